"""Distributed Map throughput: 100,000 CSV rows read from the local S3 store by an ItemReader, in
batches of 1,000 (100 child executions, each recorded on disk) with the results written by a
ResultWriter — items per second and peak memory — next to an inline Map in the same run over the
most rows a state input can carry (AWS's 256 KiB payload quota: the reason Distributed Map exists),
one iteration per row, with the same per-item work.

Peak memory is tracemalloc's peak of Python allocations, measured in a second run of each (tracing
slows the interpreter, so the timed runs are untraced).

Run: .venv/bin/python benchmarks/bench_distributed_map.py [ROWS]
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator.asl import run_definition
from emulator.asl.ports import Integrations
from emulator.integrations.s3_sdk import register_map_run
from emulator.services.s3.store import LocalS3

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
BATCH = 1_000
PAYLOAD_QUOTA = 262_144


def table(rows: int) -> str:
    rng = random.Random(0)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "amount", "category"])
    for i in range(rows):
        writer.writerow([i, rng.randint(1, 1000), rng.choice("abcde")])
    return out.getvalue()


DISTRIBUTED = {
    "StartAt": "Rows",
    "States": {
        "Rows": {
            "Type": "Map",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "CSV"},
                           "Parameters": {"Bucket": "bench", "Key": "rows.csv"}},
            "ItemBatcher": {"MaxItemsPerBatch": BATCH, "BatchInput": {"run.$": "$.run"}},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "bench", "Prefix": "results"}},
            "MaxConcurrency": 10,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Count",
                "States": {"Count": {"Type": "Pass", "Parameters": {"rows.$": "States.ArrayLength($.Items)",
                                                                     "run.$": "$.BatchInput.run"}, "End": True}},
            },
            "End": True,
        }
    },
}

INLINE = {
    "StartAt": "Rows",
    "States": {
        "Rows": {
            "Type": "Map",
            "ItemsPath": "$.rows",
            "ItemSelector": {"row.$": "$$.Map.Item.Value", "run.$": "$.run"},
            "ItemProcessor": {"StartAt": "Count", "States": {"Count": {"Type": "Pass", "Parameters": {"id.$": "$.row.id"}, "End": True}}},
            "ResultSelector": {"rows.$": "States.ArrayLength($)"},
            "End": True,
        }
    },
}


def inline_rows(text: str) -> list[dict]:
    """The most leading rows whose execution input fits in the payload quota."""
    rows = list(csv.DictReader(io.StringIO(text)))
    low, high = 0, len(rows)
    while low < high:
        mid = (low + high + 1) // 2
        if len(json.dumps({"run": "b", "rows": rows[:mid]}, separators=(",", ":"))) <= PAYLOAD_QUOTA - 1024:
            low = mid
        else:
            high = mid - 1
    return rows[:low]


def run(definition: dict, value: dict, integrations: Integrations, folder: Path, name: str):
    return run_definition(definition, value, integrations=integrations, execution_name=name, state_machine_name="Bench",
                          history_dir=folder / name, rng=random.Random(1))


def measured(fn) -> tuple[float, float]:
    """(seconds of an untraced run, peak MiB of a traced one)."""
    begin = time.perf_counter()
    fn("timed")
    seconds = time.perf_counter() - begin
    tracemalloc.start()
    fn("traced")
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        s3 = LocalS3(root / "s3")
        (root / "s3" / "bench").mkdir(parents=True)
        text = table(ROWS)
        s3.put_bytes("s3://bench/rows.csv", text.encode())
        integrations = Integrations()
        register_map_run(integrations, s3)
        executions = root / "executions"

        def distributed(name: str) -> None:
            result = run(DISTRIBUTED, {"run": "b"}, integrations, executions, f"dist-{name}")
            assert result.status == "SUCCEEDED", (result.error, result.cause)
            manifest = json.loads(s3.get_bytes(f"s3://bench/{result.output['ResultWriterDetails']['Key']}"))
            written = sum(len(json.loads(s3.get_bytes(f"s3://bench/{f['Key']}"))) for f in manifest["ResultFiles"]["SUCCEEDED"])
            assert written == -(-ROWS // BATCH), written

        rows = inline_rows(text)

        def inline(name: str) -> None:
            result = run(INLINE, {"run": "b", "rows": rows}, integrations, executions, f"inline-{name}")
            assert result.status == "SUCCEEDED" and result.output == {"rows": len(rows)}, (result.error, result.cause)

        dist_seconds, dist_peak = measured(distributed)
        inline_seconds, inline_peak = measured(inline)

    dist_rate, inline_rate = ROWS / dist_seconds, len(rows) / inline_seconds
    print(f"Distributed Map: {ROWS:,} CSV rows from S3, batches of {BATCH:,} ({-(-ROWS // BATCH)} child executions), ResultWriter")
    print(f"  {dist_seconds:.2f} s  {dist_rate:,.0f} items/s  peak {dist_peak:.1f} MiB")
    print(f"Inline Map: {len(rows):,} rows (the most a 256 KiB execution input carries), one iteration each")
    print(f"  {inline_seconds:.2f} s  {inline_rate:,.0f} items/s  peak {inline_peak:.1f} MiB")
    print(f"ratio: Distributed/inline items per second = {dist_rate / inline_rate:.1f}x; "
          f"peak memory per 1,000 items = {dist_peak / ROWS * 1000:.2f} vs {inline_peak / len(rows) * 1000:.2f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

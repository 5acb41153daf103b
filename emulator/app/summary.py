"""What `run` tells a person after a successful pipeline execution: the gate decision and metrics,
the model, the batch predictions and the endpoint — and one real prediction from that endpoint for
a raw row of the uploaded table (its first data row without the target), through boto3's
sagemaker-runtime client, exactly as an application would call it — and the disk the run added
under .emulator/."""

from __future__ import annotations

import csv
import io
import json
import logging
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator.runtime import Runtime
from emulator.services.sagemaker import cluster
from emulator.storage.layout import Layout

log = logging.getLogger(__name__)


def disk_line(added: int, total: int) -> str:
    """The bytes a run added under the state folder, and what the folder holds now."""
    sign = "+" if added >= 0 else "-"
    return (f"  disk              {sign}{size_text(abs(added))} under .emulator/ by this run ({size_text(total)} in all; "
            f"`python -m emulator clean` prunes old executions)")


def size_text(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return str(count)


def print_pipeline_summary(runtime: Runtime, output: Any, write: Callable[[str], None] = print,
                           source: Path | None = None, disk: tuple[int, int] | None = None) -> None:
    """``source``: the file the run uploaded; its first data row is what the endpoint is asked.
    ``disk``: (bytes the run added under .emulator/, bytes it holds now)."""
    if not isinstance(output, dict) or "gate" not in output or "endpoint" not in output:
        if disk is not None:
            write(disk_line(*disk))
        text = json.dumps(output, indent=2, default=str).splitlines()  # not the training pipeline's shape
        write("output:")
        for line in text[:40]:
            write(line[:200])
        if len(text) > 40:
            write(f"... ({len(text) - 40} more lines in output.json)")
        return
    gate = output["gate"]
    write("")
    write("summary")
    write(f"  problem type      {output.get('problem_type')}")
    # the gate's reason names the model, the bar and the baseline: folded so no line passes 200 columns
    for line in textwrap.wrap(f"{'PASSED' if gate.get('passed') else 'FAILED'}: {gate.get('reason')}", width=180,
                              initial_indent="  quality gate      ", subsequent_indent=" " * 20):
        write(line)
    for line in leaderboard_lines(output):
        write(line)
    metrics = _evaluation_metrics(runtime, output.get("evaluation_report"))
    if metrics:
        write("  test metrics      " + ", ".join(f"{k}={_fmt(v)}" for k, v in metrics.items() if not isinstance(v, list)))
    write(f"  model             {output.get('model_name')}")
    write(f"  model package     {output.get('model_package')}")
    write(f"  batch predictions {output.get('batch_predictions')}")
    endpoint = output["endpoint"]
    name = endpoint.get("EndpointName")
    base = runtime.invoke_server_url()
    write(f"  endpoint          {name} ({endpoint.get('EndpointStatus')}) at {base}/endpoints/{name}/invocations")
    if disk is not None:
        write(disk_line(*disk))
    for line in memory_lines(runtime.layout, output.get("model_name")):
        write(line)
    target = (output.get("target") or {}).get("column")
    row, where = _first_raw_row(source, target)
    if row is None:  # started from an input document: the batch file holds raw rows of the table too
        row, where = _first_batch_row(runtime, output.get("batch_input")), "the first row of the batch input"
    if row is None:
        return
    prediction = invoke(base, name, row)
    write(f"  invoke_endpoint   boto3 sagemaker-runtime, {where}:")
    write(f"                    {row[:150]}")
    write(f"                    -> {prediction}")
    write("")
    write("The endpoint takes raw rows (the table's columns without the target, CSV or JSON by column name) and")
    write("answers in the table's own labels. It lives while this process does; keep it up with `python -m emulator")
    write("serve`, then call it with boto3.client('sagemaker-runtime', endpoint_url='<serve URL>').invoke_endpoint(")
    write(f"EndpointName='{name}', ContentType='text/csv', Body='<a row>') (README: Call your endpoint).")
    write("`serve` also answers the Step Functions API, to start and inspect executions with boto3 (see README).")


def leaderboard_lines(output: dict) -> list[str]:
    """The competition as the run's output carries it: Select winner's table (each line under 200
    columns), the rule it applied and where the winner's explanation is."""
    table = output.get("leaderboard_table") or []
    if not table:
        return []
    count = len(output.get("leaderboard") or [])
    lines = [f"  leaderboard       {count} candidate(s); * = deployed (winner: {output.get('winner')})"]
    lines += ["    " + line[:190] for line in table]
    lines += textwrap.wrap(f"rule: {output.get('selection_rule')}", width=180, initial_indent=" " * 20,
                           subsequent_indent=" " * 20)
    if output.get("explainability"):
        lines.append(f"  explanation       {output['explainability']}"[:199])  # explainability.png beside it
    return lines


KINDS = {"processing-jobs": "processing", "training-jobs": "training", "transform-jobs": "transform"}


def memory_lines(layout: Layout, model_name: str | None) -> list[str]:
    """Each job stage of the run with its peak resident memory per host (the processes' own, read by
    wait4 when they ended): where a bigger table will hit the wall first. The run's jobs are the ones
    whose names carry its execution hash (lambdas/validate_input's job_names: <stem>-<hash>-<step>)."""
    if not model_name or model_name.count("-") < 2:
        return []
    tag = f"-{model_name.rsplit('-', 2)[-2]}-"
    stages: list[tuple[float, str, dict[str, int | None]]] = []
    trials: list[int] = []
    for kind, shown in KINDS.items():
        root = layout.sagemaker_work_root / kind
        for folder in root.glob(f"*{tag}*") if root.is_dir() else []:
            peaks = cluster.read_resources(folder / "logs")
            if not peaks:
                continue  # a one-instance transform scores in the emulator's own process
            if "-tuning-" in folder.name:  # tuning trials: one line for all
                trials += [v for v in peaks.values() if v]
                continue
            stages.append(((folder / "logs" / cluster.RESOURCES_FILE).stat().st_mtime, f"{shown} {folder.name.rsplit(tag, 1)[-1]}", peaks))
    lines = []
    for _, label, peaks in sorted(stages):
        hosts = ", ".join(f"{host} {_mib(v)}" for host, v in peaks.items())
        lines.append(f"  peak memory       {label:<24} {hosts}")
    if trials:
        lines.append(f"  peak memory       {'tuning trials':<24} {len(trials)} process(es), largest {_mib(max(trials))}")
    return lines


def _mib(value: int | None) -> str:
    return "?" if value is None else f"{value / 2**20:.0f} MiB"


def invoke(base_url: str, endpoint_name: str, csv_row: str) -> str:
    import boto3

    client = boto3.client("sagemaker-runtime", endpoint_url=base_url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    response = client.invoke_endpoint(EndpointName=endpoint_name, ContentType="text/csv", Accept="text/csv", Body=csv_row)
    return response["Body"].read().decode().strip()


def _evaluation_metrics(runtime: Runtime, uri: str | None) -> dict:
    if not uri or not runtime.s3.exists(uri):
        return {}
    return json.loads(runtime.s3.get_bytes(uri)).get("metrics", {})


def _first_raw_row(source: Path | None, target: str | None) -> tuple[str | None, str]:
    """The uploaded file's first data row without the target column, as a CSV line."""
    if source is None or not target or not Path(source).is_file():
        return None, ""
    with open(source, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        row = next((r for r in reader if any(cell.strip() for cell in r)), None)
    if row is None or target not in header:
        return None, ""
    at = header.index(target)
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow([cell for i, cell in enumerate(row) if i != at])
    return line.getvalue(), f"the first data row of {Path(source).name} without {target!r}"


def _first_batch_row(runtime: Runtime, prefix: str | None) -> str | None:
    if not prefix:
        return None
    for uri in runtime.s3.list(prefix):
        for line in runtime.s3.get_bytes(uri).decode().splitlines():
            if line.strip():
                return line
    return None


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)

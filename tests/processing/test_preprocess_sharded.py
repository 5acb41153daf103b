"""preprocess.py's chunked engine: 1 vs 2 (and 3) instances, any chunk size, give the same splits, schema
and baseline statistics; its outputs keep the contract downstream reads."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from processing_scripts import chunked_accumulators, chunked_reading, preprocess

DATA = Path(__file__).resolve().parents[2] / "data"
SCRIPTS = Path(chunked_reading.__file__).parent


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """The bank sample over two files, with duplicates across and within them, rows without a target,
    messy spellings and stray text in a numeric column."""
    folder = tmp_path_factory.mktemp("raw")
    frame = pd.read_csv(DATA / "bank-marketing.csv").sample(frac=1.0, random_state=3).reset_index(drop=True)
    frame["balance"] = frame["balance"].astype(object)
    frame.loc[::997, "balance"] = "?"  # under 5%: the column stays numeric, those cells missing
    frame.loc[::50, "job"] = frame.loc[::50, "job"].str.upper() + " "
    frame.loc[::300, "deposit"] = None
    first, second = frame.iloc[:6000], frame.iloc[6000:]
    second = pd.concat([second, first.iloc[:150], second.iloc[:40]])  # 190 duplicates (+ copies without target)
    first.to_csv(folder / "part-a.csv", index=False)
    second.to_csv(folder / "part-b.csv", index=False)
    return folder


def run_sharded(raw: Path, out: Path, instances: int, chunk_rows: int, train_shards: int = 2) -> Path:
    """The three stages as three processing jobs run them: statistics and transform on every instance
    (each with its resourceconfig.json), merge on one."""
    common = ["--target-column", "deposit", "--engine", "chunked", "--chunk-rows", str(chunk_rows),
              "--train-shards", str(train_shards)]
    hosts = [f"algo-{i}" for i in range(1, instances + 1)]
    configs = []
    for host in hosts:
        config = out / "config" / host / "resourceconfig.json"
        config.parent.mkdir(parents=True)
        config.write_text(json.dumps({"current_host": host, "hosts": hosts}))
        configs.append(config)
    for config in configs:
        assert preprocess.main(["--input-dir", str(raw), "--output-dir", str(out / "partials"), "--stage", "statistics",
                                "--resource-config", str(config), *common]) == 0
    assert preprocess.main(["--input-dir", str(raw), "--output-dir", str(out / "merged"), "--stage", "merge",
                            "--statistics-dir", str(out / "partials"), *common]) == 0
    for config in configs:
        assert preprocess.main(["--input-dir", str(raw), "--output-dir", str(out / "final"), "--stage", "transform",
                                "--statistics-dir", str(out / "merged" / "plan"), "--resource-config", str(config),
                                *common]) == 0
    return out


def rows(folder: Path) -> np.ndarray:
    """Every row of a split folder's files, sorted (the order within a split follows the sharding)."""
    blocks = [np.loadtxt(p, delimiter=",", ndmin=2) for p in sorted(folder.glob("*.csv")) if p.stat().st_size]
    data = np.vstack(blocks)
    return data[np.lexsort(data.T[::-1])]


def _approx_equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_approx_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_approx_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12)
    return a == b


def without_engine(schema: dict) -> dict:
    return {k: v for k, v in schema.items() if k != "engine"}


@pytest.fixture(scope="module")
def one(table, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one")
    assert preprocess.main(["--input-dir", str(table), "--output-dir", str(out), "--target-column", "deposit",
                            "--engine", "chunked", "--chunk-rows", "5000", "--train-shards", "2"]) == 0
    return out


def test_one_and_two_instances_give_the_same_splits_schema_and_baseline(table, one, tmp_path):
    two = run_sharded(table, tmp_path, instances=2, chunk_rows=1000)
    schema_one = json.loads((one / "schema/schema.json").read_text())
    schema_two = json.loads((two / "merged/schema/schema.json").read_text())
    assert without_engine(schema_one) == without_engine(schema_two)
    assert schema_two["engine"]["instances"] == 2
    assert (one / "schema/baseline.json").read_text() == (two / "merged/schema/baseline.json").read_text()
    # the featurizer carries schema.json (whose "engine" says how many instances ran): its encoding is the schema's
    assert (one / "decoder/model.tar.gz").read_bytes() == (two / "merged/decoder/model.tar.gz").read_bytes()
    # Model Monitor's baseline (monitor_baseline.py's accumulators, merged across instances): the same
    # counts, categories and sample; means and variances up to the order of floating-point sums
    monitor_one = json.loads((one / "schema/statistics.json").read_text())
    monitor_two = json.loads((two / "merged/schema/statistics.json").read_text())
    assert _approx_equal(monitor_one, monitor_two)
    baseline_rows = json.loads((one / "schema/baseline.json").read_text())["rows"]
    assert monitor_one["dataset"]["item_count"] == baseline_rows
    assert {f["name"] for f in monitor_one["features"]} == {c["name"] for c in schema_one["source_columns"]}
    assert (one / "schema/constraints.json").read_text() == (two / "merged/schema/constraints.json").read_text()
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(rows(one / split), rows(two / "final" / split), err_msg=split)
    # every instance wrote its own files; train in --train-shards parts for a ShardedByS3Key channel
    assert sorted(p.name for p in (two / "final/train").iterdir()) == [
        "train-00000-00000.csv", "train-00000-00001.csv", "train-00001-00000.csv", "train-00001-00001.csv"]
    counts = schema_one["row_counts"]
    # rows without a target and duplicates (by label identity) counted as the in-memory engine counts them
    memory = tmp_path / "memory"
    assert preprocess.main(["--input-dir", str(table), "--output-dir", str(memory), "--target-column", "deposit",
                            "--engine", "memory"]) == 0
    expected = json.loads((memory / "schema/schema.json").read_text())["row_counts"]
    assert counts["dropped_duplicates"] == expected["dropped_duplicates"] > 150
    assert counts["dropped_null_target"] == expected["dropped_null_target"] > 0
    assert counts["input"] == expected["input"]
    for split in ("train", "validation", "test"):
        assert len(rows(one / split)) == counts[split]


def test_three_instances_and_another_chunk_size_agree_too(table, one, tmp_path):
    three = run_sharded(table, tmp_path, instances=3, chunk_rows=1777)
    assert (one / "schema/baseline.json").read_text() == (three / "merged/schema/baseline.json").read_text()
    np.testing.assert_array_equal(rows(one / "test"), rows(three / "final/test"))


def test_the_chunked_outputs_keep_the_contract(table, one):
    schema = json.loads((one / "schema/schema.json").read_text())
    assert schema["problem_type"] == "binary" and schema["labels"] == ["no", "yes"]
    assert "job=admin." in schema["feature_names"]  # "ADMIN. " merged into its most frequent spelling
    assert any(d["column"] == "balance" and d["action"] == "read as numbers:" for d in schema["column_decisions"])
    # the batch rows are the test rows as uploaded: the featurizer's encoding of them is the test split
    test = np.loadtxt(one / "test/test-00000.csv", delimiter=",", ndmin=2)
    batch = pd.read_csv(one / "batch/batch-00000.csv", header=None, names=schema["input_columns"], dtype=object,
                        skipinitialspace=True)
    np.testing.assert_array_equal(preprocess.transform_with_schema(schema, batch), test[:, 1:])
    # stratified: each split's class balance is the table's, within sampling error
    overall = np.concatenate([rows(one / s)[:, 0] for s in ("train", "validation", "test")]).mean()
    for split in ("train", "validation", "test"):
        assert rows(one / split)[:, 0].mean() == pytest.approx(overall, abs=0.03)
    baseline = json.loads((one / "schema/baseline.json").read_text())
    train = rows(one / "train")
    age = schema["feature_names"].index("age") + 1
    assert baseline["features"]["age"]["count"] == baseline["rows"] >= len(train)
    assert baseline["features"]["age"]["quantiles"]["p50"] == pytest.approx(np.median(train[:, age]), abs=1)


def test_byte_ranges_cut_at_line_ends_and_lose_no_line(table):
    options = preprocess.Options(table, table, "deposit")
    _, files = chunked_reading.inputs(options)
    lines = sum(len(p.read_bytes().splitlines()) - 1 for p, _, _ in files)
    for count in (1, 2, 5):
        pieces = [piece for rank in range(count) for piece in chunked_reading.shard_pieces(files, rank, count)]
        read = 0
        for piece in pieces:
            with open(piece.path, "rb") as handle:
                handle.seek(piece.start)
                block = handle.read(piece.end - piece.start)
            assert block.endswith(b"\n")
            read += block.count(b"\n")
        assert read == lines


def test_merge_of_value_counts_beyond_the_cap_is_order_free(monkeypatch):
    monkeypatch.setattr(chunked_accumulators, "VALUE_CAP", 50)
    numbers = np.random.default_rng(0).lognormal(size=400)
    whole = chunked_accumulators.Values()
    whole.add(numbers)
    parts = [chunked_accumulators.Values() for _ in range(3)]
    for i, part in enumerate(parts):
        part.add(numbers[i::3])
    parts[2].merge(parts[0])
    parts[2].merge(parts[1])
    assert whole.bucketed and parts[2].bucketed
    np.testing.assert_array_equal(whole.values, parts[2].values)
    np.testing.assert_array_equal(whole.counts, parts[2].counts)
    assert whole.median() == pytest.approx(np.median(numbers), rel=0.003)


def test_the_stages_run_as_scripts_from_a_flat_code_folder(table, one, tmp_path):
    """As the jobs run them: the folder uploaded as it is (chunked.py's parts beside preprocess.py, imported
    without a package), each stage its own process, the partials and the plan read back across processes."""
    code = tmp_path / "code"
    shutil.copytree(SCRIPTS, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    hosts = ["algo-1", "algo-2"]
    common = ["--target-column", "deposit", "--engine", "chunked", "--chunk-rows", "3000", "--train-shards", "2"]

    def stage(*args: str) -> None:
        proc = subprocess.run([sys.executable, str(code / "preprocess.py"), *args, *common], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]

    for host in hosts:
        config = tmp_path / "config" / host / "resourceconfig.json"
        config.parent.mkdir(parents=True)
        config.write_text(json.dumps({"current_host": host, "hosts": hosts}))
    for host in hosts:
        stage("--input-dir", str(table), "--output-dir", str(tmp_path / "partials"), "--stage", "statistics",
              "--resource-config", str(tmp_path / "config" / host / "resourceconfig.json"))
    stage("--input-dir", str(tmp_path / "partials"), "--output-dir", str(tmp_path / "merged"), "--stage", "merge",
          "--statistics-dir", str(tmp_path / "partials"))
    for host in hosts:
        stage("--input-dir", str(table), "--output-dir", str(tmp_path / "final"), "--stage", "transform",
              "--statistics-dir", str(tmp_path / "merged" / "plan"),
              "--resource-config", str(tmp_path / "config" / host / "resourceconfig.json"))
    assert (one / "schema/baseline.json").read_text() == (tmp_path / "merged/schema/baseline.json").read_text()
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(rows(one / split), rows(tmp_path / "final" / split), err_msg=split)


def test_the_engine_modules_import_one_way():
    """chunked_reading <- chunked_accumulators <- chunked_merge <- chunked: each imports only earlier ones."""
    order = ["chunked_reading", "chunked_accumulators", "chunked_merge", "chunked"]
    for position, name in enumerate(order):
        tree = ast.parse((SCRIPTS / f"{name}.py").read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                    for alias in node.names}
        assert imported & set(order) <= set(order[:position]), name

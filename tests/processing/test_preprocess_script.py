"""preprocess.py on the real sample data: splits, encodings, schema, determinism and named errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from processing_scripts import preprocess

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
SCRIPT = ROOT / "processing_scripts" / "preprocess.py"
OUTPUT_FILES = ["train/train.csv", "validation/validation.csv", "test/test.csv", "batch/batch.csv",
                "schema/schema.json", "schema/baseline.json", "schema/statistics.json",
                "schema/constraints.json", "featurizer/model.tar.gz", "decoder/model.tar.gz"]


def run(input_path: Path, output_dir: Path, target: str, *extra: str) -> int:
    return preprocess.main(["--input-dir", str(input_path), "--output-dir", str(output_dir),
                            "--target-column", target, *extra])


def read_csv(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture(scope="module")
def abalone(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("abalone")
    assert run(DATA / "abalone.csv", out, "rings") == 0
    return out


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bank")
    assert run(DATA / "bank-marketing.csv", out, "deposit") == 0
    return out


def schema_of(out: Path) -> dict:
    return json.loads((out / "schema" / "schema.json").read_text())


class TestAbaloneRegression:
    def test_writes_exactly_the_contract_files(self, abalone):
        assert files_under(abalone) == sorted(
            [*OUTPUT_FILES, "train", "validation", "test", "batch", "schema", "featurizer", "decoder"])

    def test_split_sizes_follow_the_fractions(self, abalone):
        counts = {name: len(read_csv(abalone / name / f"{name}.csv")) for name in ("train", "validation", "test")}
        assert counts == {"train": 2923, "validation": 627, "test": 627}  # 4,177 rows, ceil(15%) each
        assert schema_of(abalone)["row_counts"] == {
            "input": 4177, "dropped_null_target": 0, "dropped_duplicates": 0,
            "train": 2923, "validation": 627, "test": 627, "batch": 627}

    def test_regression_with_label_first_and_no_leakage(self, abalone):
        schema = schema_of(abalone)
        assert schema["problem_type"] == "regression"
        assert schema["num_classes"] is None and schema["label_mapping"] is None
        assert schema["xgboost"]["objective"] == "reg:squarederror"
        assert "rings" not in schema["feature_names"]
        assert all(f["source_column"] != "rings" for f in schema["features"])
        raw = pd.read_csv(DATA / "abalone.csv")
        train = read_csv(abalone / "train" / "train.csv")
        assert set(np.unique(train[:, 0])) <= set(raw["rings"].astype(float))
        # the label is column 0 only: no feature column reproduces it
        features = train[:, 1:]
        assert features.shape[1] == len(schema["feature_names"]) == 10
        assert not any(np.array_equal(features[:, i], train[:, 0]) for i in range(features.shape[1]))

    def test_sex_is_one_hot_encoded(self, abalone):
        schema = schema_of(abalone)
        assert schema["feature_names"][:3] == ["sex=F", "sex=I", "sex=M"]
        train = read_csv(abalone / "train" / "train.csv")
        assert np.all(train[:, 1:4].sum(axis=1) == 1)

    def test_batch_is_the_test_rows_raw_and_encodes_to_the_test_split(self, abalone):
        """batch.csv is what a scoring file looks like (the uploaded columns without the target, no
        header); encoded from schema.json it is exactly the test split's features."""
        schema = schema_of(abalone)
        test = read_csv(abalone / "test" / "test.csv")
        batch = pd.read_csv(abalone / "batch" / "batch.csv", header=None, names=schema["input_columns"])
        assert schema["input_columns"] == [c for c in pd.read_csv(DATA / "abalone.csv", nrows=0).columns
                                           if c != "rings"]
        assert set(batch["sex"]) == {"M", "F", "I"}
        np.testing.assert_array_equal(preprocess.transform_with_schema(schema, batch), test[:, 1:])

    def test_baseline_has_statistics_per_feature(self, abalone):
        baseline = json.loads((abalone / "schema" / "baseline.json").read_text())
        schema = schema_of(abalone)
        assert list(baseline["features"]) == schema["feature_names"]
        length = baseline["features"]["length"]
        train = read_csv(abalone / "train" / "train.csv")
        assert length["count"] == 2923
        assert length["mean"] == pytest.approx(train[:, 4].mean())
        assert sum(length["histogram"]["counts"]) == 2923
        # categories as the encoder compares them: trimmed and case-folded
        assert baseline["source_columns"]["sex"]["top_categories"].keys() == {"f", "i", "m"}


class TestBankBinary:
    def test_binary_with_label_mapping(self, bank):
        schema = schema_of(bank)
        assert schema["problem_type"] == "binary"
        assert schema["num_classes"] == 2
        assert schema["label_mapping"] == {"0": "no", "1": "yes"}
        assert schema["labels"] == ["no", "yes"] and schema["label_spellings_merged"] == {}
        assert schema["xgboost"]["tuning_objective_metric"] == "validation:auc"
        assert "deposit" not in schema["feature_names"]
        assert not any(name.startswith("deposit") for name in schema["feature_names"])

    def test_splits_are_stratified(self, bank):
        raw = pd.read_csv(DATA / "bank-marketing.csv")
        overall = (raw["deposit"] == "yes").mean()
        sizes = {}
        for name in ("train", "validation", "test"):
            labels = read_csv(bank / name / f"{name}.csv")[:, 0]
            sizes[name] = len(labels)
            assert set(np.unique(labels)) == {0.0, 1.0}
            assert labels.mean() == pytest.approx(overall, abs=0.002)
        assert sizes == {"train": 7812, "validation": 1675, "test": 1675}

    def test_categoricals_are_one_hot_within_the_cap(self, bank):
        schema = schema_of(bank)
        encodings = {c["name"]: c["encoding"] for c in schema["source_columns"]}
        assert encodings["job"] == "one_hot" and encodings["month"] == "one_hot"
        assert encodings["age"] == "passthrough"
        assert len(schema["feature_names"]) == len(read_csv(bank / "test" / "test.csv")[0]) - 1

    def test_schema_round_trips(self, bank):
        schema = schema_of(bank)
        assert json.loads(json.dumps(schema)) == schema
        # re-encoding the raw rows from schema.json alone reproduces every scored row
        raw = pd.read_csv(DATA / "bank-marketing.csv", skipinitialspace=True)
        encoded = preprocess.transform_with_schema(schema, raw.drop(columns=["deposit"]))
        known = {tuple(row) for row in encoded}
        test = read_csv(bank / "test" / "test.csv")[:, 1:]
        assert all(tuple(row) in known for row in test)

    def test_rerun_gives_identical_bytes(self, bank, tmp_path):
        assert run(DATA / "bank-marketing.csv", tmp_path, "deposit") == 0
        for rel in OUTPUT_FILES:
            assert (tmp_path / rel).read_bytes() == (bank / rel).read_bytes(), rel

    def test_no_staging_left_behind(self, bank):
        assert not [p for p in bank.iterdir() if p.name.startswith(".")]


def test_iris_is_multiclass_with_stratified_splits(tmp_path):
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.frame.assign(species=[iris.target_names[t] for t in iris.target]).drop(columns=["target"])
    frame.to_csv(tmp_path / "iris.csv", index=False)
    out = tmp_path / "out"
    assert run(tmp_path / "iris.csv", out, "species") == 0
    schema = schema_of(out)
    assert schema["problem_type"] == "multiclass"
    assert schema["num_classes"] == 3
    assert schema["label_mapping"] == {"0": "setosa", "1": "versicolor", "2": "virginica"}
    assert schema["xgboost"] == {"objective": "multi:softprob", "num_class": 3,
                                 "tuning_objective_metric": "validation:mlogloss"}
    for name in ("train", "validation", "test"):
        labels = read_csv(out / name / f"{name}.csv")[:, 0]
        assert np.bincount(labels.astype(int)).min() >= len(labels) // 3 - 1


def test_folder_of_files_is_read_in_sorted_order_and_cleaned(tmp_path):
    raw = pd.read_csv(DATA / "abalone.csv")
    folder = tmp_path / "raw"
    (folder / "part").mkdir(parents=True)
    raw.iloc[:2000].to_csv(folder / "a.csv", index=False)
    # the second file repeats 100 rows (duplicates) and has 7 rows without a target
    tail = pd.concat([raw.iloc[2000:], raw.iloc[:100]])
    tail.loc[tail.index[:7], "rings"] = np.nan
    tail.to_csv(folder / "part" / "b.csv", index=False)
    (folder / "notes.txt").write_text("ignored: not a .csv")
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    assert run(folder, out, "rings") == 0
    counts = schema_of(out)["row_counts"]
    assert counts["input"] == 4277
    assert counts["dropped_null_target"] == 7
    assert counts["dropped_duplicates"] == 100
    assert counts["train"] + counts["validation"] + counts["test"] == 4170
    assert schema_of(out)["input_files"] == ["a.csv", "part/b.csv"]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before  # input untouched


def test_high_cardinality_falls_back_to_frequency_encoding(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({
        "city": [f"city{int(i)}" for i in rng.integers(0, 40, n)],
        "color": rng.choice(["red", "green", None], n),
        "x": rng.normal(size=n),
        "y": rng.normal(size=n),
    })
    frame.loc[::10, "x"] = np.nan
    frame.to_csv(tmp_path / "raw.csv", index=False)
    out = tmp_path / "out"
    assert run(tmp_path / "raw.csv", out, "y", "--max-onehot-cardinality", "5") == 0
    schema = schema_of(out)
    columns = {c["name"]: c for c in schema["source_columns"]}
    assert columns["city"]["encoding"] == "frequency"
    assert sum(columns["city"]["frequencies"].values()) == pytest.approx(1.0)
    assert columns["color"]["encoding"] == "one_hot"
    assert columns["color"]["categories"] == ["__missing__", "green", "red"]
    assert columns["x"]["imputation"]["strategy"] == "median"
    train = read_csv(out / "train" / "train.csv")
    assert not np.isnan(train).any()


# --- bad input: a real file each, the named error, nothing written ---------------------------

def _rows(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


BAD_INPUTS = {
    "empty file": ("", "y", [], "EmptyInputError"),
    "header only": ("a,b,y\n", "y", [], "HeaderOnlyError"),
    "missing target": (_rows("a,b,c", [f"{i},{i * 2},{i % 2}" for i in range(50)]), "y", [],
                       "MissingTargetColumnError"),
    "single class": (_rows("a,b,y", [f"{i},{i * 2},yes" for i in range(50)]), "y", [], "UnusableTarget"),
    "single class in two spellings": (_rows("a,b,y", [f"{i},{i * 2},{'Yes' if i % 2 else 'yes '}" for i in range(50)]),
                                      "y", [], "UnusableTarget"),
    "all-null target": (_rows("a,b,y", [f"{i},{i * 2}," for i in range(50)]), "y", [], "UnusableTarget"),
    "non-numeric regression target": (_rows("a,b,y", [f"{i},{i * 2},{'high' if i % 3 else 'low'}"
                                                      for i in range(50)]),
                                      "y", ["--problem-type", "regression"], "UnusableTarget"),
    "six spellings of two classes forced to multiclass... is fine, forced to regression is not": (
        _rows("a,y", [f"{i},{['Yes', 'yes', 'YES', 'no', 'No', 'NO'][i % 6]}" for i in range(60)]), "y",
        ["--problem-type", "regression"], "UnusableTarget"),
    "duplicate columns": (_rows("a,a,y", [f"{i},{i * 2},{i % 2}" for i in range(50)]), "y", [],
                          "DuplicateColumnError"),
    "unparseable file": (_rows("a,b,y", ["1,2,0", "3,4,1", "5,6,1,7,8", "9,10,0"]), "y", [],
                         "UnparseableFileError"),
    "too few rows": (_rows("a,b,y", ["1,2,0", "3,4,1", "5,6,0", "7,8,1"]), "y", [], "InsufficientData"),
    "too few labelled rows": (_rows("a,b,y", [f"{i},{i % 7},{'' if i > 20 else i % 2}" for i in range(200)]), "y", [],
                              "InsufficientData"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_fails_with_named_error_and_writes_nothing(case, tmp_path, capsys):
    content, target, extra, error = BAD_INPUTS[case]
    (tmp_path / "raw.csv").write_text(content)
    out = tmp_path / "out"
    out.mkdir()
    assert run(tmp_path / "raw.csv", out, target, *extra) == 1
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith(f"{error}: ")
    assert issubclass(getattr(preprocess, error), preprocess.PreprocessError)
    assert len(last_line) > len(error) + 30  # says what was wrong and what to do
    assert list(out.iterdir()) == []


def test_binary_file_is_unparseable(tmp_path, capsys):
    (tmp_path / "raw.csv").write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)))
    assert run(tmp_path / "raw.csv", tmp_path / "out", "y") == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("UnparseableFileError: ")
    assert not (tmp_path / "out").exists()


def test_rare_class_cannot_be_stratified(tmp_path, capsys):
    rows = [f"{(i * 7) % 61},{i % 2}" for i in range(60)] + ["61,2"]
    (tmp_path / "raw.csv").write_text(_rows("a,y", rows))
    assert run(tmp_path / "raw.csv", tmp_path / "out", "y", "--problem-type", "multiclass") == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("InsufficientData: Target 'y': class(es) with too few labelled rows ('2': 1)")
    assert "at least 3 rows of every class" in err


def test_cli_reports_last_stderr_line_and_failure_file(tmp_path):
    (tmp_path / "raw.csv").write_text(_rows("a,b,c", ["1,2,3", "4,5,6"]))
    failure = tmp_path / "output" / "message"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--input-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"),
         "--target-column", "label", "--failure-file", str(failure)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("MissingTargetColumnError: Target column 'label' is not in the input columns")
    assert failure.read_text().strip() == last
    assert not (tmp_path / "out").exists()


def test_header_with_quoted_commas_is_read(tmp_path):
    with (tmp_path / "raw.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["size, cm", "kind", "y"])
        for i in range(60):
            writer.writerow([(i * 7) % 11, "a, b" if i % 2 else "c", i * 1.5])
    assert run(tmp_path / "raw.csv", tmp_path / "out", "y") == 0
    assert schema_of(tmp_path / "out")["feature_names"] == ["size, cm", "kind=a, b", "kind=c"]

"""What validation can know before any job: infinite cells, stray text in numeric columns, the
built-in algorithm's hyperparameters, the user's objective, thresholds, duplicate columns, encodings
and tuning budgets — on real CSV objects in moto S3, and preprocess.py reading the same cells alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_validate_input import BUCKET, invoke

from lambdas.validate_input import handler as validate
from processing_scripts import preprocess

DATA = Path(__file__).resolve().parents[2] / "data"


def abalone_with(cells: dict[tuple[int, str], str]) -> str:
    """The sample table with some cells replaced: (data row index, column) -> text."""
    lines = (DATA / "abalone.csv").read_text().splitlines()
    header = lines[0].split(",")
    for (row, column), text in cells.items():
        fields = lines[row + 1].split(",")
        fields[header.index(column)] = text
        lines[row + 1] = ",".join(fields)
    return "\n".join(lines) + "\n"


def put(s3, key: str, text: str | bytes) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=text.encode() if isinstance(text, str) else text)
    return key


def preprocessed(tmp_path, text: str) -> dict:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "data.csv").write_text(text)
    return preprocess.run(preprocess.Options(raw, tmp_path / "out", "rings"))


def test_infinite_cells_are_treated_as_missing_with_a_warning_in_the_lambda_and_in_preprocess(s3, tmp_path):
    text = abalone_with({(0, "length"): "inf", (5, "length"): "-inf", (9, "length"): "Infinity", (12, "rings"): "inf"})
    plan = invoke(put(s3, "raw/inf.csv", text))
    assert plan["problem_type"] == "regression"  # an infinite target cell is no label, not a class
    assert any("Column 'length': 3 infinite value(s)" in n and "treated as missing" in n for n in plan["notes"])
    assert any("1 infinite value(s) in target 'rings'" in n for n in plan["notes"])
    schema = preprocessed(tmp_path, text)  # no numpy traceback: the cells are imputed
    assert schema["problem_type"] == "regression" and schema["row_counts"]["dropped_null_target"] == 1
    assert any("Column 'length': 3 infinite value(s)" in line for line in schema["report"])
    length = next(c for c in schema["source_columns"] if c["name"] == "length")
    assert length["kind"] == "numeric"


def test_a_few_stray_text_cells_keep_a_numeric_column_numeric_and_are_named(s3, tmp_path):
    text = abalone_with({(3, "diameter"): "unknown", (40, "diameter"): "?", (400, "diameter"): '"0,41"'})
    plan = invoke(put(s3, "raw/stray.csv", text))
    [note] = [n for n in plan["notes"] if "diameter" in n]
    assert "3 of its 4177 filled cells are not numbers" in note and "'unknown', '?', '0,41'" in note
    schema = preprocessed(tmp_path, text)
    assert [c["kind"] for c in schema["source_columns"] if c["name"] == "diameter"] == ["numeric"]
    assert note in " ".join(schema["report"])  # the same words from the same rule


def test_a_column_that_is_mostly_text_stays_categorical_without_a_warning(s3, tmp_path):
    plan = invoke(put(s3, "raw/plain.csv", (DATA / "abalone.csv").read_text()))
    assert plan["notes"] == []
    schema = preprocessed(tmp_path, (DATA / "abalone.csv").read_text())
    assert [c["kind"] for c in schema["source_columns"] if c["name"] == "sex"] == ["categorical"]


@pytest.mark.parametrize("hyperparameters, words", [
    ({"max_depth": "-1"}, "max_depth: value -1 is outside its range"),
    ({"not_a_param": "1"}, "Extraneous hyperparameter found: not_a_param"),
    ({"num_round": "3.5"}, "num_round: could not parse value '3.5' as an integer"),
    ({"subsample": "0"}, "subsample: value 0 is outside its range"),
])
def test_hyperparameters_are_checked_against_the_built_in_algorithm_before_any_job(s3, hyperparameters, words):
    key = put(s3, "raw/abalone.csv", (DATA / "abalone.csv").read_text())
    with pytest.raises(validate.InvalidHyperparameter, match="would refuse") as err:
        invoke(key, hyperparameters=hyperparameters)
    assert words in str(err.value)


def test_a_tuning_range_outside_the_algorithms_range_is_refused(s3):
    key = put(s3, "raw/abalone.csv", (DATA / "abalone.csv").read_text())
    ranges = {"IntegerParameterRanges": [], "CategoricalParameterRanges": [],
              "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1", "MaxValue": "1.5"}]}
    with pytest.raises(validate.InvalidHyperparameter, match="eta: value 1.5 is outside its range"):
        invoke(key, tuning_ranges=ranges)


def test_a_user_objective_is_honoured_when_it_fits_and_refused_by_name_when_not(s3):
    key = put(s3, "raw/abalone.csv", (DATA / "abalone.csv").read_text())
    plan = invoke(key, hyperparameters={"objective": "reg:absoluteerror"})
    xgboost = plan["candidates"][0]
    assert xgboost["hyperparameters"]["objective"] == xgboost["static_hyperparameters"]["objective"] == "reg:absoluteerror"
    with pytest.raises(validate.IncompatibleObjective, match="'binary:logistic' does not fit this regression problem"):
        invoke(key, hyperparameters={"objective": "binary:logistic"})


@pytest.mark.parametrize("threshold", [-1, -0.5])
def test_a_threshold_outside_the_metrics_range_is_refused_before_any_job(s3, threshold):
    key = put(s3, "raw/abalone.csv", (DATA / "abalone.csv").read_text())
    with pytest.raises(validate.InvalidQualityThreshold, match=f"quality_threshold {threshold:g} is outside rmse's range"):
        invoke(key, quality_threshold=threshold)


def test_duplicate_column_names_are_refused_before_any_job(s3):
    text = (DATA / "abalone.csv").read_text().replace("length,diameter", "length,length", 1)
    with pytest.raises(validate.DuplicateColumns, match=r"duplicate column names \['length'\]"):
        invoke(put(s3, "raw/dupes.csv", text))


@pytest.mark.parametrize("encoding, name", [("utf-16", "UTF-16 (little-endian)"), ("utf-16-be", "UTF-16 (big-endian, no byte-order mark)"),
                                            ("utf-32", "UTF-32 (little-endian)")])
def test_a_file_in_another_unicode_encoding_is_named(s3, encoding, name):
    data = (DATA / "abalone.csv").read_text().encode(encoding)
    with pytest.raises(validate.NotCsvInput, match=rf"is {name.replace('(', '.').replace(')', '.')} text, not UTF-8"):
        invoke(put(s3, "raw/wide.csv", data))


def test_a_latin_1_file_names_the_byte(s3):
    data = (DATA / "abalone.csv").read_text().replace("M,", "Mé,", 1).encode("latin-1")
    with pytest.raises(validate.NotCsvInput, match="byte 0xE9 at offset"):
        invoke(put(s3, "raw/latin.csv", data))


def test_tuning_max_jobs_zero_blames_tuning_max_jobs(s3):
    key = put(s3, "raw/abalone.csv", (DATA / "abalone.csv").read_text())
    with pytest.raises(validate.InvalidPipelineSetting, match="tuning_max_jobs must be at least 1, got 0.*tuning_enabled"):
        invoke(key, tuning_max_jobs=0)
    json.dumps(invoke(key, tuning_max_jobs=1, tuning_max_parallel_jobs=1))  # the smallest budget is fine

"""The featurizer: raw rows -> exactly preprocess's features; the one-row fast path equals the pandas
path; every bad request is a 400 naming the column and row, and the server keeps serving."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
from pipeline_helpers import build, csv_lines

from containers.pipeline import load_container
from containers.serving.factories import model_environment
from containers.serving.workers import ServerProcess
from processing_scripts import preprocess


@pytest.fixture(scope="module", params=["abalone.csv", "bank-marketing.csv", "iris.csv", "churn.csv"])
def model(request, tmp_path_factory):
    return build(request.param, tmp_path_factory.mktemp(request.param.split(".")[0]), rounds=5)


def featurize(model, body: bytes, content_type: str = "text/csv"):
    response = load_container(model.containers[0]).invoke(body, content_type, None)
    assert response.status == 200, response.body
    return np.loadtxt(response.body.decode().splitlines(), delimiter=",", ndmin=2)


def test_featurizer_on_the_raw_table_gives_the_test_split_exactly(model):
    """Every row of preprocess's test split is, exactly, the featurizer's answer for a line of the
    uploaded file (the split is a sample of those rows), and the featurizer agrees with
    transform_with_schema on every row."""
    features = featurize(model, "\n".join(model.file_lines()).encode())
    np.testing.assert_array_equal(features, preprocess.transform_with_schema(model.schema, model.feature_rows()))
    x_test, _ = model.split("test")
    known = {row.tobytes() for row in features}
    missing = [i for i, row in enumerate(x_test) if row.tobytes() not in known]
    assert not missing, f"test rows {missing[:5]} are not the featurization of any raw row"


def test_one_row_fast_path_equals_the_pandas_path(model):
    """transform_with_schema of one row at a time (no pandas) against the DataFrame path, every row."""
    featurizer = load_container(model.containers[0]).model
    records = featurizer.rows_from_csv("\n".join(csv_lines(model.feature_rows())))
    pandas_path = preprocess.transform_with_schema(model.schema, records)  # > FAST_PATH_ROWS: a DataFrame
    assert len(records) > preprocess.FAST_PATH_ROWS
    fast = np.vstack([preprocess.transform_with_schema(model.schema, [row]) for row in records])
    np.testing.assert_array_equal(fast, pandas_path)
    np.testing.assert_array_equal(pandas_path, preprocess.transform_with_schema(model.schema, model.feature_rows()))


def test_header_line_is_skipped_and_json_matches_csv(model):
    rows = model.feature_rows().head(5)
    plain = featurize(model, "\n".join(csv_lines(rows)).encode())
    with_header = featurize(model, rows.to_csv(index=False).encode())
    np.testing.assert_array_equal(plain, with_header)
    instances = json.loads(rows.to_json(orient="records"))
    np.testing.assert_array_equal(plain, featurize(model, json.dumps({"instances": instances}).encode(),
                                                   "application/json"))


def test_unknown_category_is_encoded_as_training_encoded_rare_ones(model):
    categorical = [c for c in model.schema["source_columns"] if c["kind"] == "categorical"]
    if not categorical:
        pytest.skip("no categorical column in this table")
    rows = model.feature_rows().head(1).copy()
    rows[categorical[0]["name"]] = "never-seen-in-training"
    expected = preprocess.transform_with_schema(model.schema, rows)  # the pandas path, as in training
    np.testing.assert_array_equal(featurize(model, "\n".join(csv_lines(rows)).encode()), expected)


def test_an_infinite_value_is_missing_as_preprocess_read_it(model):
    """preprocess treats an infinite cell as missing (feature_rules.py): the same cell at serving time
    gives the same features as an empty one, in CSV and in JSON."""
    numeric = [c["name"] for c in model.schema["source_columns"] if c["kind"] == "numeric"]
    rows = model.feature_rows().head(1).astype(object)
    empty, infinite = rows.copy(), rows.copy()
    empty[numeric[0]] = ""
    infinite[numeric[0]] = "-inf"
    expected = featurize(model, "\n".join(csv_lines(empty)).encode())
    np.testing.assert_array_equal(featurize(model, "\n".join(csv_lines(infinite)).encode()), expected)
    instance = json.loads(rows.to_json(orient="records"))[0]
    instance[numeric[0]] = float("inf")
    np.testing.assert_array_equal(featurize(model, json.dumps({"instances": [instance]}).encode(),
                                            "application/json"), expected)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    bank = build("bank-marketing.csv", tmp_path_factory.mktemp("bank-server"), rounds=5)
    process = ServerProcess.start("containers.serving.factories:model_app", workers=2,
                                  env=model_environment(bank.containers))
    yield process, bank
    process.stop()


def post(url: str, body: bytes, content_type: str) -> tuple[int, str]:
    request = urllib.request.Request(url + "/invocations", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def good_row(bank) -> str:
    return csv_lines(bank.feature_rows().head(1))[0]


@pytest.mark.parametrize("case", ["column_count", "not_a_number", "missing_column"])
def test_bad_requests_answer_400_naming_column_and_row_and_serving_goes_on(server, case):
    process, bank = server
    good = good_row(bank)
    if case == "column_count":
        status, message = post(process.base_url, f"{good}\n{good},extra".encode(), "text/csv")
        assert "Row 2 has 17 columns; expected 16" in message and "age" in message
    elif case == "not_a_number":
        cells = good.split(",")
        cells[0] = "forty"
        status, message = post(process.base_url, f"{good}\n{','.join(cells)}".encode(), "text/csv")
        assert "Row 2, column 'age': 'forty' is not a number" in message
    else:
        instance = json.loads(bank.feature_rows().head(1).to_json(orient="records"))[0]
        del instance["balance"]
        status, message = post(process.base_url, json.dumps({"instances": [instance]}).encode(), "application/json")
        assert "Row 1 lacks column 'balance'" in message
    assert status == 400
    status, answer = post(process.base_url, good.encode(), "text/csv")
    assert status == 200 and answer.split(",")[0] in ("yes", "no")


def test_featurizer_error_names_its_container(server):
    _, bank = server
    from containers.pipeline import load_model

    response = load_model(bank.containers).invoke(b"1,2,3", "text/csv", None)
    assert response.status == 400 and response.container == "featurizer"


def test_a_frame_of_rows_goes_through_pandas_unchanged():
    schema = {"source_columns": [{"name": "n", "kind": "numeric", "encoding": "passthrough",
                                  "imputation": {"strategy": "median", "value": 2.5}},
                                 {"name": "c", "kind": "categorical", "encoding": "one_hot", "categories": ["__missing__", "a", "b"]}]}
    frame = pd.DataFrame({"n": [1.0, None], "c": ["b", None]})
    expected = [[1.0, 0.0, 0.0, 1.0], [2.5, 1.0, 0.0, 0.0]]
    assert preprocess.transform_with_schema(schema, frame).tolist() == expected
    assert preprocess.transform_with_schema(schema, [{"n": 1.0, "c": "b"}, {"n": None, "c": None}]).tolist() == expected

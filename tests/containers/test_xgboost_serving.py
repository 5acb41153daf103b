"""Inference of the XGBoost twin: content types, accepts, status codes, bytes; in-process and over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import load_iris
from xgb_twin_helpers import ROOT, load_split, preprocessed

from containers.xgboost.serving import ModelLoadError, load_predictor


@pytest.fixture(scope="module")
def abalone(tmp_path_factory) -> Path:
    return preprocessed("abalone.csv", "rings", tmp_path_factory.mktemp("abalone"))


def save(booster: xgb.Booster, model_dir: Path) -> Path:
    model_dir.mkdir(parents=True)
    booster.save_model(str(model_dir / "xgboost-model.ubj"))
    (model_dir / "xgboost-model.ubj").rename(model_dir / "xgboost-model")
    return model_dir


@pytest.fixture(scope="module")
def regression_model(abalone, tmp_path_factory) -> tuple[Path, xgb.Booster, np.ndarray]:
    x, y = load_split(abalone, "train")
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 3}, xgb.DMatrix(x, label=y), 20)
    x_test, _ = load_split(abalone, "test")
    return save(booster, tmp_path_factory.mktemp("reg") / "model"), booster, x_test[:5]


@pytest.fixture(scope="module")
def softprob_model(tmp_path_factory) -> tuple[Path, xgb.Booster, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 2},
                        xgb.DMatrix(x, label=y), 10)
    return save(booster, tmp_path_factory.mktemp("iris") / "model"), booster, x[[0, 60, 120]]


def csv_body(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()


def expected(booster: xgb.Booster, rows: np.ndarray) -> list:
    return booster.predict(xgb.DMatrix(rows.astype(np.float32))).tolist()


def test_csv_default_accept_is_comma_joined_scores(regression_model):
    model_dir, booster, rows = regression_model
    response = load_predictor(model_dir, batch=False).invoke(csv_body(rows), "text/csv", None)
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert response.body == ",".join(str(s) for s in expected(booster, rows)).encode()


def test_csv_in_batch_mode_is_one_score_per_line(regression_model):
    model_dir, booster, rows = regression_model
    response = load_predictor(model_dir, batch=True).invoke(csv_body(rows), "text/csv", "text/csv")
    assert response.body == "".join(f"{s}\n" for s in expected(booster, rows)).encode()


def test_json_accept(regression_model):
    model_dir, booster, rows = regression_model
    response = load_predictor(model_dir).invoke(csv_body(rows), "text/csv; charset=utf-8", "application/json")
    assert response.status == 200 and response.content_type == "application/json"
    scores = expected(booster, rows)
    assert response.body == ('{"predictions": [' + ", ".join(f'{{"score": {s}}}' for s in scores) + "]}").encode()
    assert json.loads(response.body) == {"predictions": [{"score": s} for s in scores]}


def test_jsonlines_accept(regression_model):
    model_dir, booster, rows = regression_model
    response = load_predictor(model_dir).invoke(csv_body(rows), "text/csv", "application/jsonlines")
    assert response.content_type == "application/jsonlines"
    assert response.body == "".join(f'{{"score": {s}}}\n' for s in expected(booster, rows)).encode()


def test_softprob_json_has_a_probability_list_per_row(softprob_model):
    model_dir, booster, rows = softprob_model
    response = load_predictor(model_dir).invoke(csv_body(rows), "text/csv", "application/json")
    probabilities = expected(booster, rows)
    assert len(probabilities[0]) == 3
    assert response.body == json.dumps({"predictions": [{"score": p} for p in probabilities]}).encode()
    assert [int(np.argmax(p["score"])) for p in json.loads(response.body)["predictions"]] == [0, 1, 2]


def test_empty_csv_cells_are_missing_values(regression_model):
    model_dir, booster, _rows = regression_model
    body = b"1.0,0.0,0.0,0.5,,0.1,0.4,0.2,,0.1"
    response = load_predictor(model_dir).invoke(body, "text/csv", "application/json")
    row = np.array([[1.0, 0.0, 0.0, 0.5, np.nan, 0.1, 0.4, 0.2, np.nan, 0.1]], dtype=np.float32)
    assert json.loads(response.body)["predictions"][0]["score"] == booster.predict(xgb.DMatrix(row)).tolist()[0]


def test_libsvm_input_scores_like_csv(regression_model):
    model_dir, _, rows = regression_model
    predictor = load_predictor(model_dir)
    # every entry written: in libsvm an absent entry is a missing value, not a zero
    libsvm = "\n".join(" ".join(f"{j}:{float(v)!r}" for j, v in enumerate(row)) for row in rows)
    from_libsvm = predictor.invoke(libsvm.encode(), "text/libsvm", "application/json")
    from_csv = predictor.invoke(csv_body(rows), "text/csv", "application/json")
    assert from_libsvm.status == 200
    assert from_libsvm.body == from_csv.body


@pytest.mark.parametrize(("body", "content_type", "accept", "status"), [
    (b"", "text/csv", "application/json", 204),
    (b"1,2,3", "application/x-npy", None, 415),
    (b"1,2,3", "application/json", None, 415),
    (b"a,b,c", "text/csv", None, 415),
    (b"1,2,3", "text/csv", "image/png", 406),
    (b"1,2,3", "text/csv", None, 400),
])
def test_status_codes(regression_model, body, content_type, accept, status):
    model_dir, _, _ = regression_model
    response = load_predictor(model_dir).invoke(body, content_type, accept)
    assert response.status == status
    if status not in (200, 204):
        assert response.body  # a reason the caller can act on


def test_accept_wildcard_and_lists(regression_model):
    model_dir, _, rows = regression_model
    predictor = load_predictor(model_dir)
    assert predictor.invoke(csv_body(rows), "text/csv", "*/*").content_type == "text/csv"
    assert predictor.invoke(csv_body(rows), None, "image/png, application/jsonlines").content_type == \
        "application/jsonlines"


def test_concurrent_invocations_agree(regression_model):
    model_dir, _booster, rows = regression_model
    predictor = load_predictor(model_dir)
    bodies = [csv_body(np.roll(rows, i, axis=0)) for i in range(len(rows))] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda b: predictor.invoke(b, "text/csv", "application/json"), bodies))
    for body, response in zip(bodies, responses):
        assert response.body == predictor.invoke(body, "text/csv", "application/json").body


def test_missing_model_is_a_named_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_predictor(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="should hold one model file named xgboost-model"):
        load_predictor(tmp_path / "empty")


def test_http_server_serves_ping_and_invocations(regression_model, tmp_path):
    model_dir, booster, rows = regression_model
    ml = tmp_path / "ml"
    ml.mkdir()
    (ml / "model").symlink_to(model_dir)
    env = {**os.environ, "SM_ML_ROOT": str(ml), "SAGEMAKER_BIND_TO_PORT": "0"}
    env.pop("SAGEMAKER_BATCH", None)
    server = subprocess.Popen([sys.executable, "-m", "containers.xgboost.serve"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("Listening on http://127.0.0.1:")
        base = line.split()[-1]
        with urllib.request.urlopen(f"{base}/ping", timeout=10) as ping:
            assert ping.status == 200
        request = urllib.request.Request(f"{base}/invocations", data=csv_body(rows), method="POST",
                                         headers={"Content-Type": "text/csv", "Accept": "application/jsonlines"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert reply.headers["Content-Type"] == "application/jsonlines"
            assert reply.read() == "".join(f'{{"score": {s}}}\n' for s in expected(booster, rows)).encode()
        bad = urllib.request.Request(f"{base}/invocations", data=b"1,2", method="POST",
                                     headers={"Content-Type": "text/csv", "Accept": "text/html"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=10)
        assert refused.value.code == 406
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()


def test_large_csv_bodies_parse_like_small_ones(regression_model):
    """Bodies past the pandas threshold (batch payloads) score and fail exactly as row-by-row ones."""
    model_dir, booster, rows = regression_model
    many = np.resize(rows, (400, rows.shape[1])).astype(np.float32)
    many[::7, 2] = np.nan
    body = "\n".join(",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in many).encode() + b"\n"
    predictor = load_predictor(model_dir, batch=True)
    assert len(body) > 2048
    response = predictor.invoke(body, "text/csv", "text/csv")
    assert response.status == 200
    assert response.body == "".join(f"{s}\n" for s in booster.predict(xgb.DMatrix(many)).tolist()).encode()
    small = predictor.invoke(b"\n".join(body.splitlines()[:3]), "text/csv", "text/csv")
    assert response.body.startswith(small.body)

    # what float() reads is read in any body: "nan" text, CRLF line ends
    assert predictor.invoke(body.replace(b",,", b",nan,"), "text/csv", "text/csv").body == response.body
    assert predictor.invoke(body.replace(b"\n", b"\r\n"), "text/csv", "text/csv").body == response.body

    short_row = body.replace(b"\n", b"\n1.0,2.0\n", 1)
    not_utf8 = body.replace(b"\n", b"\n\xff\xfe\n", 1)
    quoted = body.replace(b"\n", b'\n"1.0"' + b",1.0" * (many.shape[1] - 1) + b"\n", 1)
    for bad in (short_row, not_utf8, quoted, b"\xef\xbb\xbf" + body):
        for size in (bad, b"\n".join(bad.splitlines()[:3])):  # the same rejection below the pandas threshold
            rejected = predictor.invoke(size, "text/csv", "text/csv")
            assert rejected.status == 415 and b"csv format" in rejected.body, size[:80]

"""The scikit-learn container twin against its serving contract: entry point, handlers, codecs, errors, HTTP."""

from __future__ import annotations

import io
import json
import pickle
import sys
import tarfile
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from containers.serving.workers import ServerProcess
from containers.sklearn.transformer import load_predictor
from containers.sklearn.user_module import ModelLoadError

DEFAULT_SCRIPT = """
import os, pickle
def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.pkl"), "rb") as handle:
        return pickle.load(handle)
"""


def make_model(folder: Path, script: str = DEFAULT_SCRIPT, name: str = "inference.py",
               extra: dict[str, str] | None = None) -> Path:
    """model.tar.gz's layout extracted: model.pkl (a fitted LinearRegression) and code/<name>."""
    folder.mkdir(parents=True)
    x = np.arange(12, dtype=float).reshape(6, 2)
    model = LinearRegression().fit(x, x @ np.array([2.0, -1.0]) + 3.0)
    model.coef_, model.intercept_ = np.array([2.0, -1.0]), 3.0  # exact answers to compare bytes with
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    code = folder / "code"
    code.mkdir()
    (code / name).write_text(textwrap.dedent(script))
    for file, text in (extra or {}).items():
        (code / file).write_text(textwrap.dedent(text))
    return folder


ENV = {"SAGEMAKER_PROGRAM": "inference.py"}


def test_default_handlers_decode_csv_predict_and_encode_json(tmp_path):
    predictor = load_predictor(make_model(tmp_path / "m"), environment=ENV)
    response = predictor.invoke(b"1,2\n3,4", "text/csv", None)
    assert response.status == 200 and response.content_type == "application/json"
    assert json.loads(response.body) == pytest.approx([3.0, 5.0])


def test_default_accept_csv_json_and_npy(tmp_path):
    predictor = load_predictor(make_model(tmp_path / "m"), environment={**ENV, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})
    assert predictor.invoke(b"[[1, 2], [3, 4]]", "application/json", "*/*").body == b"3.0\n5.0\n"
    buffer = io.BytesIO()
    np.save(buffer, np.array([[1.0, 2.0]]))
    response = predictor.invoke(buffer.getvalue(), "application/x-npy", "application/x-npy")
    assert response.content_type == "application/x-npy"
    assert np.load(io.BytesIO(response.body)).tolist() == pytest.approx([3.0])


def test_content_type_defaults_to_json(tmp_path):
    predictor = load_predictor(make_model(tmp_path / "m"), environment=ENV)
    assert json.loads(predictor.invoke(b"[[1, 2]]", None, None).body) == pytest.approx([3.0])


def test_unsupported_content_type_is_415_and_accept_406(tmp_path):
    predictor = load_predictor(make_model(tmp_path / "m"), environment=ENV)
    refused = predictor.invoke(b"1,2", "text/plain", None)
    assert refused.status == 415 and json.loads(refused.body)["error"] == "UnsupportedFormatError"
    assert "text/plain" in json.loads(refused.body)["error-message"]
    assert predictor.invoke(b"1,2", "text/csv", "application/xml").status == 406


def test_model_fn_is_required(tmp_path):
    folder = make_model(tmp_path / "m", "def predict_fn(data, model):\n    return data\n")
    with pytest.raises(ModelLoadError, match="no model_fn"):
        load_predictor(folder, environment=ENV)


def test_transform_fn_with_input_fn_is_refused(tmp_path):
    script = DEFAULT_SCRIPT + "def transform_fn(m, d, c, a):\n    return d\ndef input_fn(d, c):\n    return d\n"
    with pytest.raises(ModelLoadError, match="cannot use transform_fn"):
        load_predictor(make_model(tmp_path / "m", script), environment=ENV)


def test_program_must_be_named_and_found(tmp_path):
    folder = make_model(tmp_path / "m")
    with pytest.raises(ModelLoadError, match="SAGEMAKER_PROGRAM is not set"):
        load_predictor(folder, environment={})
    with pytest.raises(ModelLoadError, match=r"no serve\.py"):
        load_predictor(folder, environment={"SAGEMAKER_PROGRAM": "serve.py"})
    assert load_predictor(folder, environment={"SAGEMAKER_PROGRAM": "inference"}).invoke(b"[[1, 2]]", None, None).status == 200


def test_transform_fn_tuple_or_bare_body(tmp_path):
    script = DEFAULT_SCRIPT + textwrap.dedent("""
        def transform_fn(model, data, content_type, accept):
            if data == "tuple":
                return "a,b", "text/csv"
            return b"bare"
        """)
    predictor = load_predictor(make_model(tmp_path / "m", script), environment=ENV)
    tupled = predictor.invoke(b"tuple", "text/csv", "application/json")
    assert (tupled.body, tupled.content_type) == (b"a,b", "text/csv")
    bare = predictor.invoke(b"other", "text/csv", "application/json")
    assert (bare.body, bare.content_type) == (b"bare", "application/json")


def test_errors_with_a_status_code_answer_it_others_500(tmp_path):
    script = DEFAULT_SCRIPT + textwrap.dedent("""
        class BadInput(Exception):
            def __init__(self, message):
                super().__init__(message)
                self.status_code, self.message = 400, message
        def input_fn(data, content_type):
            if data == "bad":
                raise BadInput("column 'age' is not a number")
            raise RuntimeError("boom")
        """)
    predictor = load_predictor(make_model(tmp_path / "m", script), environment=ENV)
    refused = predictor.invoke(b"bad", "text/csv", None)
    assert (refused.status, refused.body) == (400, b"column 'age' is not a number")
    failed = predictor.invoke(b"other", "text/csv", None)
    assert failed.status == 500 and b"RuntimeError: boom" in failed.body


def test_submit_directory_paths_and_archives(tmp_path):
    folder = make_model(tmp_path / "m")
    moved = folder / "code" / "inference.py"
    (folder / "src").mkdir()
    moved.rename(folder / "src" / "inference.py")
    env = {**ENV, "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/src"}  # the container's path of the model folder
    assert load_predictor(folder, environment=env).invoke(b"[[1, 2]]", None, None).status == 200
    archive = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder / "src" / "inference.py", arcname="inference.py")
    env = {**ENV, "SAGEMAKER_SUBMIT_DIRECTORY": str(archive)}
    assert load_predictor(folder, environment=env).invoke(b"[[1, 2]]", None, None).status == 200
    with pytest.raises(ModelLoadError, match="S3 URI"):
        load_predictor(folder, environment={**ENV, "SAGEMAKER_SUBMIT_DIRECTORY": "s3://bucket/sourcedir.tar.gz"})


def test_each_model_imports_its_own_sibling_modules(tmp_path):
    script = DEFAULT_SCRIPT + "import helper\ndef predict_fn(data, model):\n    return [helper.VALUE]\n"
    first = load_predictor(make_model(tmp_path / "a", script, extra={"helper.py": "VALUE = 1\n"}), environment=ENV)
    second = load_predictor(make_model(tmp_path / "b", script, extra={"helper.py": "VALUE = 2\n"}), environment=ENV)
    assert json.loads(first.invoke(b"[[1, 2]]", None, None).body) == [1]
    assert json.loads(second.invoke(b"[[1, 2]]", None, None).body) == [2]


def test_serves_ping_and_invocations_over_http(tmp_path):
    """``python -m containers.sklearn.serve``: the container's own command, /opt/ml moved to tmp_path."""
    make_model(tmp_path / "model")
    server = ServerProcess.launch([sys.executable, "-m", "containers.sklearn.serve", "--workers", "2"],
                                  env={**ENV, "SM_ML_ROOT": str(tmp_path), "SAGEMAKER_BIND_TO_PORT": "0"})
    try:
        with urllib.request.urlopen(server.base_url + "/ping") as answer:
            assert answer.status == 200
        request = urllib.request.Request(server.base_url + "/invocations", data=b"1,2\n3,4",
                                         headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        with urllib.request.urlopen(request) as answer:
            assert answer.read() == b"3.0\n5.0\n" and answer.headers["Content-Type"] == "text/csv"
        request = urllib.request.Request(server.base_url + "/invocations", data=b"1,2", headers={"Content-Type": "text/plain"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        assert refused.value.code == 415
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(urllib.request.Request(server.base_url + "/nowhere", data=b"x"))
        assert missing.value.code == 404
    finally:
        server.stop()

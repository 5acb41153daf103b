"""Raw rows in, the user's labels out: the served serial pipeline (featurizer -> XGBoost -> label
decoder) answers exactly what an in-process featurize, predict and decode gives."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import xgboost as xgb
from pipeline_helpers import build, csv_lines

from containers.pipeline import load_model
from containers.serving.factories import model_environment
from containers.serving.workers import ServerProcess
from processing_scripts import preprocess
from processing_scripts.serving.label_decoder import LabelDecoder
from processing_scripts.serving.package import class_labels

LABELS = {"abalone.csv": None, "bank-marketing.csv": {"no", "yes"}, "iris.csv": {"setosa", "versicolor", "virginica"}}


@pytest.fixture(scope="module", params=list(LABELS))
def served(request, tmp_path_factory):
    model = build(request.param, tmp_path_factory.mktemp(request.param.split(".")[0]), rounds=10)
    server = ServerProcess.start("containers.serving.factories:model_app", workers=2,
                                 env=model_environment(model.containers))
    yield request.param, model, server
    server.stop()


def in_process(model, rows, accept: str) -> str:
    """featurize (the pandas path), predict (Booster.predict), decode: the answer to compare with."""
    features = preprocess.transform_with_schema(model.schema, rows)
    scores = model.booster.predict(xgb.DMatrix(features)).tolist()
    decoder = LabelDecoder(model.schema["problem_type"], class_labels(model.schema))
    return decoder.encode(decoder.decode(scores), accept)[0]


def invoke(server, body: bytes, content_type: str, accept: str) -> str:
    request = urllib.request.Request(server.base_url + "/invocations", data=body,
                                     headers={"Content-Type": content_type, "Accept": accept})
    with urllib.request.urlopen(request) as answer:
        assert answer.headers["Content-Type"] == accept
        return answer.read().decode()


def test_batches_of_raw_rows_answer_as_in_process(served):
    _, model, server = served
    rows = model.feature_rows().sample(n=min(300, len(model.raw)), random_state=0)
    for accept in ("text/csv", "application/json"):
        assert invoke(server, "\n".join(csv_lines(rows)).encode(), "text/csv", accept) == in_process(model, rows, accept)


def test_single_rows_answer_as_in_process_in_the_users_labels(served):
    dataset, model, server = served
    rows, lines = model.feature_rows().head(20), model.file_lines()
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        answer = invoke(server, lines[i].encode(), "text/csv", "text/csv")  # the file's own text
        assert answer == in_process(model, row, "text/csv")
        instance = json.loads(row.to_json(orient="records"))
        decoded = json.loads(invoke(server, json.dumps({"instances": instance}).encode(), "application/json",
                                    "application/json"))
        assert decoded == json.loads(in_process(model, row, "application/json"))
        if LABELS[dataset]:
            label, probability = answer.strip().split(",")
            assert label in LABELS[dataset] and 0.5 <= float(probability) <= 1.0
            assert set(decoded["predictions"][0]["probabilities"]) == LABELS[dataset]


def test_batch_transform_mode_answers_the_same(served):
    _, model, _ = served
    pipeline = load_model(model.containers, batch=True)  # SAGEMAKER_BATCH=true, as a transform job runs it
    rows = model.feature_rows().head(100)
    response = pipeline.invoke("\n".join(csv_lines(rows)).encode(), "text/csv", "text/csv")
    assert response.status == 200 and response.body.decode() == in_process(model, rows, "text/csv")


def _children(pid: int) -> set[str]:
    """Processes whose parent is ``pid`` (the server's workers), from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if fields[1] == str(pid):
            found.add(stat.parent.name)
    return found


def test_reloading_every_worker_under_load_fails_no_request(served):
    """SIGHUP replaces each worker (it loads the models again) while four connections keep asking."""
    dataset, model, server = served
    if dataset != "bank-marketing.csv":
        pytest.skip("one table is enough")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from loadgen import build_requests, run_load

    bodies = [line.encode() for line in model.file_lines()[:50]]
    requests = build_requests("127.0.0.1", server.port, "/invocations", bodies, "text/csv")
    before = _children(server.process.pid)
    server.reload()
    answered, failed, reconnects, deadline = 0, 0, 0, time.monotonic() + 90
    while time.monotonic() < deadline:
        result = run_load("127.0.0.1", server.port, requests, 4, 1.0)
        answered, failed, reconnects = answered + result.requests, failed + result.failed, reconnects + result.reconnects
        if len(before - _children(server.process.pid)) >= 2:  # both workers replaced
            break
    assert len(before - _children(server.process.pid)) >= 2, "the workers were not replaced"
    # a retiring worker closes its keep-alive connections; the client reopens them (as botocore
    # does) and no request is lost or answered with an error
    assert answered > 100 and failed == 0, (failed, reconnects)

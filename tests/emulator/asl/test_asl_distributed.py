"""Distributed Map and redrive beyond the conformance corpus: gzipped inventories, listing pages,
MaxConcurrency with real waiting tasks, stopping a Map Run, EXPRESS children, redriving an abort."""

from __future__ import annotations

import gzip
import json
import sys
import threading
import time
from pathlib import Path

import pytest

from emulator.asl import run_definition
from emulator.asl.redrive import Redrive
from emulator.integrations.s3_sdk import register_map_run
from emulator.services.s3.store import LocalS3
from emulator.storage.executions import read_execution
from emulator.storage.mapruns import children_of, map_runs_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))
from fakes import scripted_integrations

sys.path.pop(0)


def dmap(processor_states: dict, start: str, kind: str = "STANDARD", **fields) -> dict:
    return {"StartAt": "M", "States": {"M": {
        "Type": "Map", "End": True, **fields,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": kind}, "StartAt": start, "States": processor_states},
    }}}


PASS = {"P": {"Type": "Pass", "End": True}}
TASK = {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}}


@pytest.fixture
def s3(tmp_path):
    store = LocalS3(tmp_path / "s3")
    (tmp_path / "s3" / "data").mkdir(parents=True)
    return store


def test_a_gzipped_s3_inventory_is_read(s3, tmp_path):
    rows = "".join(f"photos,img/{i}.jpg,{i * 10}\n" for i in range(5)).encode()
    s3.put_bytes("s3://data/inv/data/part-0.csv.gz", gzip.compress(rows))
    manifest = {"sourceBucket": "photos", "destinationBucket": "arn:aws:s3:::data", "fileFormat": "CSV",
                "fileSchema": "Bucket, Key, Size", "files": [{"key": "inv/data/part-0.csv.gz", "size": 1}]}
    s3.put_bytes("s3://data/inv/manifest.json", json.dumps(manifest).encode())
    integrations, _ = scripted_integrations({})
    register_map_run(integrations, s3)
    definition = dmap(PASS, "P", ItemReader={"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "MANIFEST", "MaxItems": 3},
                                             "Parameters": {"Bucket": "data", "Key": "inv/manifest.json"}})
    result = run_definition(definition, {}, integrations=integrations)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == [{"Bucket": "photos", "Key": f"img/{i}.jpg", "Size": str(i * 10)} for i in range(3)]


def test_a_listing_longer_than_one_page_is_read_whole(s3):
    for i in range(1005):  # S3 answers 1,000 keys a page: the reader follows the continuation token
        s3.put_bytes(f"s3://data/logs/{i:05d}.txt", b"x")
    integrations, _ = scripted_integrations({})
    register_map_run(integrations, s3)
    definition = dmap(PASS, "P", ItemReader={"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "data", "Prefix": "logs/"}},
                      ItemSelector={"k.$": "$$.Map.Item.Value.Key"}, ItemBatcher={"MaxItemsPerBatch": 500})
    result = run_definition(definition, {}, integrations=integrations)
    assert result.status == "SUCCEEDED", result.cause
    assert [len(batch["Items"]) for batch in result.output] == [500, 500, 5]
    assert result.output[2]["Items"][-1] == {"k": "logs/01004.txt"}


def test_children_run_at_most_max_concurrency_at_once(tmp_path):
    integrations, fake = scripted_integrations({"T": [{"echo": True, "sleep": 0.2, "when": i} for i in range(6)]})
    started = time.monotonic()
    result = run_definition(dmap(TASK, "T", ItemsPath="$.xs", MaxConcurrency=2), {"xs": list(range(6))},
                            integrations=integrations, history_dir=tmp_path / "e")
    assert result.status == "SUCCEEDED" and result.output == list(range(6))
    assert fake.max_in_flight == 2  # in parallel, but never more than two
    assert time.monotonic() - started < 6 * 0.2
    (run,) = map_runs_of(tmp_path / "e")
    assert run["executionCounts"]["succeeded"] == 6 and run["status"] == "SUCCEEDED"
    children = children_of(tmp_path / "e", run["mapRunArn"].rsplit(":", 1)[-1])
    assert len(children) == 6
    child = read_execution(children[0])
    assert child["status"]["mapRunArn"] == run["mapRunArn"] and child["history"][0]["type"] == "ExecutionStarted"


def test_express_children_keep_no_records(tmp_path):
    integrations, _ = scripted_integrations({})
    result = run_definition(dmap(PASS, "P", kind="EXPRESS", ItemsPath="$.xs"), {"xs": [1, 2]}, integrations=integrations,
                            history_dir=tmp_path / "e")
    assert result.status == "SUCCEEDED"
    (run,) = map_runs_of(tmp_path / "e")
    assert run["executionCounts"]["succeeded"] == 2
    assert children_of(tmp_path / "e", run["mapRunArn"].rsplit(":", 1)[-1]) == []


def test_stopping_the_parent_aborts_the_map_run_and_a_redrive_finishes_it(tmp_path):
    script = {"T": [{"echo": True, "when": 0}, {"echo": True, "sleep": 30, "when": 1}]}
    integrations, _fake = scripted_integrations(script)
    abort = threading.Event()
    threading.Timer(0.5, abort.set).start()
    result = run_definition(dmap(TASK, "T", ItemsPath="$.xs", MaxConcurrency=1), {"xs": [0, 1, 2]},
                            integrations=integrations, history_dir=tmp_path / "e", abort=abort)
    assert result.status == "ABORTED"
    assert "MapRunAborted" in [e["type"] for e in result.history]
    (run,) = map_runs_of(tmp_path / "e")
    assert run["status"] == "ABORTED"
    assert run["executionCounts"]["succeeded"] == 1 and run["executionCounts"]["aborted"] == 1 and run["executionCounts"]["pending"] == 1

    again, fake_again = scripted_integrations({"T": [{"echo": True, "when": 1}, {"echo": True, "when": 2}]})
    redriven = run_definition(None, integrations=again, history_dir=tmp_path / "e", redrive=Redrive.load(tmp_path / "e"))
    assert redriven.status == "SUCCEEDED" and redriven.output == [0, 1, 2]
    assert fake_again.call_counts() == {"T": 2}  # the child that succeeded was not run again
    (run,) = map_runs_of(tmp_path / "e")
    assert run["status"] == "SUCCEEDED" and run["redriveCount"] == 1
    aborted_child = [c for c in children_of(tmp_path / "e", run["mapRunArn"].rsplit(":", 1)[-1])
                     if read_execution(c)["status"].get("redriveCount")]
    assert len(aborted_child) == 1
    types = [e["type"] for e in read_execution(aborted_child[0])["history"]]
    assert types[0] == "ExecutionStarted" and "ExecutionAborted" in types and "ExecutionRedriven" in types


def test_a_succeeded_execution_has_no_redrive_point(tmp_path):
    integrations, _ = scripted_integrations({})
    run_definition({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, {}, integrations=integrations,
                   history_dir=tmp_path / "e")
    with pytest.raises(ValueError, match="no redrive point"):
        Redrive.load(tmp_path / "e")

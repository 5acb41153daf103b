"""EventBridge locally: pattern matching, input transformers, routing and the drop folder."""

from __future__ import annotations

import json
import threading
import time

import pytest

from emulator.cli.watch import watch
from emulator.services.eventbridge import (
    EventBus,
    InputTransformerError,
    apply_input_transformer,
    matches,
    object_created_event,
)
from emulator.services.s3.store import LocalS3

EVENT = object_created_event("data", "raw/2024/abalone.csv", 191968, '"abc123"', region="us-east-1",
                             account="000000000000")


def bus_of(deployment, start_execution=None):
    return EventBus(deployment.rules, deployment.buckets, region=deployment.region, account=deployment.account,
                    dead_letters_dir=deployment.layout.dead_letters_dir, start_execution=start_execution)


def test_object_created_event_has_eventbridges_shape():
    assert EVENT["source"] == "aws.s3" and EVENT["detail-type"] == "Object Created"
    assert EVENT["resources"] == ["arn:aws:s3:::data"]
    assert EVENT["detail"]["bucket"] == {"name": "data"}
    assert EVENT["detail"]["object"]["key"] == "raw/2024/abalone.csv"
    assert EVENT["detail"]["object"]["size"] == 191968
    assert EVENT["detail"]["object"]["etag"] == "abc123"  # unquoted, as S3 sends it
    assert EVENT["detail"]["reason"] == "PutObject" and EVENT["account"] == "000000000000"


def pattern(key_matcher, **detail) -> dict:
    return {"source": ["aws.s3"], "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": ["data"]}, "object": {"key": [key_matcher]}, **detail}}


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        ("raw/2024/abalone.csv", True),
        ("raw/other.csv", False),
        ({"prefix": "raw/"}, True),
        ({"prefix": "curated/"}, False),
        ({"prefix": {"equals-ignore-case": "RAW/"}}, True),
        ({"suffix": ".csv"}, True),
        ({"suffix": ".parquet"}, False),
        ({"wildcard": "raw/*.csv"}, True),
        ({"wildcard": "raw/*/abalone.csv"}, True),
        ({"wildcard": "raw/*.json"}, False),
        ({"anything-but": "raw/x.csv"}, True),
        ({"anything-but": {"prefix": "raw/"}}, False),
        ({"anything-but": ["raw/2024/abalone.csv"]}, False),
        ({"equals-ignore-case": "RAW/2024/ABALONE.CSV"}, True),
        ({"exists": True}, True),
        ({"exists": False}, False),
    ],
)
def test_key_matchers(matcher, expected):
    assert matches(pattern(matcher), EVENT) is expected


def test_numeric_exists_and_or():
    size = {"object": {"key": [{"prefix": "raw/"}], "size": [{"numeric": [">", 0, "<=", 200000]}]}}
    assert matches({"detail": size}, EVENT)
    assert not matches({"detail": {"object": {"size": [{"numeric": [">=", 1000000]}]}}}, EVENT)
    assert matches({"detail": {"object": {"version-id": [{"exists": False}]}}}, EVENT)
    assert not matches({"detail": {"object": {"version-id": [{"exists": True}]}}}, EVENT)
    assert not matches({"detail": {"object": {"version-id": ["v1"]}}}, EVENT)  # missing field never matches
    either = {"detail": {"$or": [{"object": {"key": [{"suffix": ".json"}]}}, {"object": {"size": [191968]}}]}}
    assert matches(either, EVENT)
    assert not matches({"source": ["aws.ec2"]}, EVENT)
    assert matches({"resources": ["arn:aws:s3:::data"]}, EVENT)  # an array field matches any element
    assert not matches(None, EVENT)


def test_input_transformer_quoting_rules():
    transformer = {
        "InputPathsMap": {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key",
                          "size": "$.detail.object.size", "obj": "$.detail.object", "none": "$.detail.nothing"},
        "InputTemplate": '{"uri": "s3://<bucket>/<key>", "key": <key>, "size": <size>, "object": <obj>, '
                         '"missing": <none>, "text": "<none>", "rule": "<aws.events.rule-name>"}',
    }
    result = json.loads(apply_input_transformer(transformer, EVENT))
    assert result["uri"] == "s3://data/raw/2024/abalone.csv"  # inside quotes: the raw text
    assert result["key"] == "raw/2024/abalone.csv"  # outside quotes: a JSON string
    assert result["size"] == 191968 and result["object"]["etag"] == "abc123"
    assert result["missing"] is None and result["text"] == ""
    assert result["rule"] == "<aws.events.rule-name>"  # no rule given: left as is
    plain = apply_input_transformer({"InputPathsMap": {"k": "$.detail.object.key"},
                                     "InputTemplate": "Object <k> created"}, EVENT)
    assert plain == "Object raw/2024/abalone.csv created"
    whole = json.loads(apply_input_transformer({"InputTemplate": '{"event": <aws.events.event>}'}, EVENT))
    assert whole["event"] == EVENT
    with pytest.raises(InputTransformerError, match="not valid JSON"):
        apply_input_transformer({"InputPathsMap": {"k": "$.detail.object.key"}, "InputTemplate": '{"k": <k'}, EVENT)


def test_mini_rule_starts_the_state_machine_with_the_transformed_input(mini_runtime):
    deployment = mini_runtime.deployment
    bucket, prefix = bus_of(deployment).upload_trigger()
    assert (bucket, prefix) == ("ministack-databuckete3889a50", "raw/")
    started = []
    bus = bus_of(deployment, start_execution=lambda arn, text, rule: started.append((arn, json.loads(text))))
    mini_runtime.s3.put_bytes(f"s3://{bucket}/raw/new.csv", b"a,b\n1,2\n")
    deliveries = bus.object_created(mini_runtime.s3, f"s3://{bucket}/raw/new.csv")
    assert len(deliveries) == 1
    assert started == [(deployment.state_machine("mini-training").arn,
                        {"input_s3_uri": f"s3://{bucket}/raw/new.csv", "key": "raw/new.csv", "action": "head"})]
    mini_runtime.s3.put_bytes(f"s3://{bucket}/other/new.csv", b"a\n")
    assert bus.object_created(mini_runtime.s3, f"s3://{bucket}/other/new.csv") == []
    # A bucket without EventBridge notifications sends no events at all.
    named = deployment.bucket("mini-named-000000000000").name
    mini_runtime.s3.put_bytes(f"s3://{named}/raw/new.csv", b"a\n")
    assert bus.object_created(mini_runtime.s3, f"s3://{named}/raw/new.csv") == []


def test_drop_folder_uploads_and_plays_the_rule(mini_runtime, tmp_path):
    deployment = mini_runtime.deployment
    bucket, prefix = bus_of(deployment).upload_trigger()
    started, seen = [], []
    bus = bus_of(deployment, start_execution=lambda arn, text, rule: started.append(json.loads(text)))
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "batch1.csv").write_bytes(b"x,y\n1,2\n")
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(drop, mini_runtime.s3, bus), kwargs={
        "bucket": bucket, "prefix": prefix, "interval": 0.05, "stop": stop.is_set,
        "on_delivery": lambda path, deliveries: seen.append(path.name)})
    thread.start()
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(5)
    assert seen == ["batch1.csv"]
    assert LocalS3(deployment.layout.s3_root).get_bytes(f"s3://{bucket}/raw/batch1.csv") == b"x,y\n1,2\n"
    assert started[0]["input_s3_uri"] == f"s3://{bucket}/raw/batch1.csv"
    assert (drop / ".done" / "batch1.csv").is_file()  # moved aside, never deleted


def test_undeliverable_event_goes_to_the_dead_letter_queue(mini_runtime):
    from emulator.services.eventbridge import EventsError

    deployment = mini_runtime.deployment
    bucket, _ = bus_of(deployment).upload_trigger()

    def reject(arn, text, rule):
        raise EventsError("the target input is not JSON")

    mini_runtime.s3.put_bytes(f"s3://{bucket}/raw/x.csv", b"a\n")
    assert bus_of(deployment, start_execution=reject).object_created(mini_runtime.s3, f"s3://{bucket}/raw/x.csv") == []
    queue = deployment.rules[0].targets[0].dead_letter_arn.rsplit(":", 1)[-1]
    letters = (mini_runtime.state_dir / "dead_letters" / f"{queue}.jsonl").read_text().splitlines()
    record = json.loads(letters[0])
    assert json.loads(record["Body"])["detail"]["object"]["key"] == "raw/x.csv"
    assert record["MessageAttributes"]["ERROR_MESSAGE"] == "the target input is not JSON"

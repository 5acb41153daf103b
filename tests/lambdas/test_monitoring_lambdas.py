"""The monitoring loop's Lambdas on moto S3: collecting a window's capture, baseline and ground truth;
turning a drift summary into metric data; building a retraining set from labelled traffic."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from lambdas.build_retraining_set import handler as retraining
from lambdas.collect_capture import handler as collect
from lambdas.drift_metrics import handler as drift_metrics

BUCKET = "pipeline-data"  # the bucket conftest.py creates

ENDPOINT = "ml-pipeline-endpoint"
COLUMNS = ["sex", "length", "weight"]
SCHEMA = {"target_column": "rings", "input_columns": COLUMNS}


def capture_line(event_id: str, body: str, content_type: str = "text/csv", encoding: str = "CSV") -> str:
    data = base64.b64encode(body.encode()).decode() if encoding == "BASE64" else body
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": encoding},
            "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "9.5", "encoding": "CSV"}},
        "eventMetadata": {"eventId": event_id, "inferenceTime": "2026-01-31T10:15:00Z"}, "eventVersion": "0"})


def label_line(event_id: str, data: str) -> str:
    return json.dumps({"groundTruthData": {"data": data, "encoding": "CSV"}, "eventMetadata": {"eventId": event_id},
                       "eventVersion": "0"})


@pytest.fixture
def champion(s3):
    run = f"s3://{BUCKET}/runs/train-1/"
    s3.put_object(Bucket=BUCKET, Key=f"champion/{ENDPOINT}/evaluation.json", Body=json.dumps({"metrics": {"rmse": 2.1}}))
    s3.put_object(Bucket=BUCKET, Key=f"champion/{ENDPOINT}/run.json", Body=json.dumps(
        {"run": run, "input": f"s3://{BUCKET}/raw/table.csv", "schema": f"{run}processed/schema/"}))
    for name in ("statistics.json", "constraints.json"):
        s3.put_object(Bucket=BUCKET, Key=f"runs/train-1/processed/schema/{name}", Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key="runs/train-1/processed/schema/schema.json", Body=json.dumps(SCHEMA))
    s3.put_object(Bucket=BUCKET, Key="raw/table.csv", Body=b"sex,length,weight,rings\nM,0.4,0.5,9\nF,0.5,0.6,11\n")
    return s3


def _collect(s3, **config):
    now = dt.datetime.now(dt.UTC)
    event = {"config": {"window_minutes": 60, **config}, "execution_name": "run-1", "started": now.isoformat()}
    glue = collect._glue(s3, BUCKET)
    return collect.collect(event, bucket=BUCKET, endpoint=ENDPOINT, **glue)


def test_no_champion_and_no_traffic_are_answers_not_errors(s3, champion):
    s3.delete_object(Bucket=BUCKET, Key=f"champion/{ENDPOINT}/evaluation.json")
    answer = _collect(s3)
    assert answer["traffic"] is False and "no model deployed" in answer["message"]
    s3.put_object(Bucket=BUCKET, Key=f"champion/{ENDPOINT}/evaluation.json", Body=b"{}")
    answer = _collect(s3)
    assert answer["traffic"] is False and answer["message"].startswith("no traffic in ")
    assert answer["window"]["text"] in answer["message"]


def test_the_window_capture_baseline_and_ground_truth_are_copied_under_the_run(champion):
    s3 = champion
    hour = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d/%H")
    s3.put_object(Bucket=BUCKET, Key=f"capture/{ENDPOINT}/AllTraffic/{hour}/a.jsonl", Body=capture_line("e1", "M,0.4,0.5"))
    s3.put_object(Bucket=BUCKET, Key=f"ground-truth/{hour}/labels.jsonl", Body=label_line("e1", "9"))
    answer = _collect(s3)
    assert answer["traffic"] is True and answer["capture_files"] == 1 and answer["ground_truth_files"] == 1
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="monitoring/run-1/")["Contents"]}
    assert keys == {f"monitoring/run-1/capture/AllTraffic/{hour}/a.jsonl", f"monitoring/run-1/ground_truth/{hour}/labels.jsonl",
                    *(f"monitoring/run-1/baseline/{n}" for n in ("statistics.json", "constraints.json", "schema.json",
                                                                  "evaluation.json"))}
    assert answer["champion_run"]["input"] == f"s3://{BUCKET}/raw/table.csv"
    assert answer["paths"]["retraining"] == f"s3://{BUCKET}/retraining/run-1/"  # not under raw/: starts nothing
    assert answer["job_name"] == "monitor-run-1"


def test_files_outside_the_window_are_not_collected(champion):
    s3 = champion
    hour = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d/%H")
    s3.put_object(Bucket=BUCKET, Key=f"capture/{ENDPOINT}/AllTraffic/{hour}/a.jsonl", Body=capture_line("e1", "M,0.4,0.5"))
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).isoformat()
    answer = _collect(s3, window_start=later, window_end=(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat())
    assert answer["traffic"] is False


def test_a_champion_without_a_baseline_is_named(champion):
    s3 = champion
    hour = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d/%H")
    s3.put_object(Bucket=BUCKET, Key=f"capture/{ENDPOINT}/AllTraffic/{hour}/a.jsonl", Body=capture_line("e1", "M,0.4,0.5"))
    s3.delete_object(Bucket=BUCKET, Key="runs/train-1/processed/schema/statistics.json")
    with pytest.raises(collect.ChampionBaselineMissing, match="statistics.json does not exist.*Retrain"):
        _collect(s3)
    s3.delete_object(Bucket=BUCKET, Key=f"champion/{ENDPOINT}/run.json")
    with pytest.raises(collect.ChampionBaselineMissing, match="no run record"):
        _collect(s3)


@pytest.mark.parametrize("config, words", [
    ({"window_start": "yesterday"}, "not an ISO 8601 time"),
    ({"window_start": "2026-01-02T00:00:00Z", "window_end": "2026-01-01T00:00:00Z"}, "at or after it ends"),
    ({"window_minutes": 0}, "positive number"),
])
def test_bad_windows_are_named(config, words):
    with pytest.raises(collect.MonitoringInputError, match=words):
        collect.window(config, "2026-01-31T10:00:00Z")


def test_hours_cover_the_window():
    start = dt.datetime(2026, 1, 31, 22, 30, tzinfo=dt.UTC)
    assert collect.hours(start, start + dt.timedelta(hours=2)) == ["2026/01/31/22/", "2026/01/31/23/", "2026/02/01/00/"]


SUMMARY = {"record_count": 2000, "drifted_feature_share": 0.25, "max_psi": 3.2,
           "features": {"length": {"psi": 3.2, "ks_pvalue": 0.0, "drifted": True},
                        "sex": {"psi": 0.4, "ks_pvalue": None, "drifted": True},
                        "weight": {"psi": 0.01, "ks_pvalue": 0.6, "drifted": False}},
           "live_quality": {"metric": "rmse", "value": 3.9, "champion_value": 2.1, "records": 500},
           "quality_degraded": True}


def test_drift_summary_becomes_metric_data():
    data, drifted = drift_metrics.metric_data(SUMMARY, ENDPOINT)
    by_name = {}
    for datum in data:
        dims = {d["Name"]: d["Value"] for d in datum["Dimensions"]}
        by_name[(datum["MetricName"], dims.get("Feature"))] = datum["Value"]
        assert dims["EndpointName"] == ENDPOINT
    assert drifted == ["length", "sex"]
    assert by_name[("DriftedFeatureShare", None)] == 0.25 and by_name[("MaxPSI", None)] == 3.2
    assert by_name[("FeatureDrift", "length")] == 1.0 and by_name[("FeatureDrift", "weight")] == 0.0
    assert by_name[("LiveQuality", None)] == 3.9 and by_name[("QualityDegraded", None)] == 1.0
    unlabelled, _ = drift_metrics.metric_data({**SUMMARY, "live_quality": None, "quality_degraded": False}, ENDPOINT)
    assert not {d["MetricName"] for d in unlabelled} & {"LiveQuality", "QualityDegraded"}


def test_an_unreadable_summary_is_named():
    with pytest.raises(drift_metrics.DriftSummaryError, match="no \"features\""):
        drift_metrics.metric_data({"drifted_feature_share": 0.1}, ENDPOINT)
    with pytest.raises(drift_metrics.DriftSummaryError, match="max_psi is 'NaN'"):
        drift_metrics.metric_data({**SUMMARY, "max_psi": "NaN"}, ENDPOINT)


def test_drift_handler_reads_the_summary(s3):
    s3.put_object(Bucket=BUCKET, Key="monitoring/run-1/analysis/drift_summary.json", Body=json.dumps(SUMMARY))
    out = drift_metrics.handler({"summary_key": "monitoring/run-1/analysis/drift_summary.json", "endpoint": ENDPOINT}, None)
    assert out["drifted_features"] == ["length", "sex"] and out["summary"]["quality_degraded"] is True
    with pytest.raises(drift_metrics.DriftSummaryError, match="wrote no summary"):
        drift_metrics.handler({"summary_key": "monitoring/none/drift_summary.json", "endpoint": ENDPOINT}, None)


def test_labelled_rows_join_capture_and_ground_truth_in_the_tables_column_order():
    header = ["sex", "length", "weight", "rings"]
    captures = ["\n".join([
        capture_line("e1", "sex,length,weight\nM,0.4,0.5\nF,0.5,0.6"),  # a header line and two rows
        capture_line("e2", json.dumps([{"sex": "I", "length": 0.3, "weight": 0.2}]), "application/json", "JSON"),
        capture_line("e3", "M,0.1,0.1", encoding="BASE64").replace('"eventId": "e3"', '"eventId": "x3", "inferenceId": "e3"'),
        capture_line("e4", "M,0.2,0.2"),  # no label yet
        capture_line("e5", "M,0.2"),  # a wrong column count
        capture_line("e6", "M,0.2,0.2\nF,0.3,0.3"),  # one label for two rows
        "{torn",
    ])]
    labels = ["\n".join([label_line("e1", "9\n11"), label_line("e2", "7"), label_line("e3", "5"),
                         label_line("e5", "4"), label_line("e6", "6")])]
    rows, skipped = retraining.labelled_rows(iter(captures), iter(labels), SCHEMA, header)
    assert rows == [["M", "0.4", "0.5", "9"], ["F", "0.5", "0.6", "11"], ["I", "0.3", "0.2", "7"], ["M", "0.1", "0.1", "5"]]
    assert skipped == {"unlabelled": 1, "unreadable": 1, "label_count_mismatch": 1}
    reordered, _ = retraining.labelled_rows(iter(captures), iter(labels), SCHEMA, ["rings", "weight", "sex", "length"])
    assert reordered[0] == ["9", "0.5", "M", "0.4"]
    with pytest.raises(retraining.RetrainingSetError, match="lacks"):
        retraining.labelled_rows(iter(captures), iter(labels), SCHEMA, ["sex", "length", "rings"])


def test_the_retraining_set_is_the_previous_input_plus_the_labelled_rows(champion):
    s3 = champion
    s3.put_object(Bucket=BUCKET, Key="monitoring/run-1/capture/AllTraffic/2026/01/31/10/a.jsonl",
                  Body=capture_line("e1", "M,0.4,0.5\nF,0.5,0.6"))
    s3.put_object(Bucket=BUCKET, Key="monitoring/run-1/ground_truth/2026/01/31/11/l.jsonl", Body=label_line("e1", "9\n11"))
    event = {"previous_input": f"s3://{BUCKET}/raw/table.csv", "capture": f"s3://{BUCKET}/monitoring/run-1/capture/",
             "ground_truth": f"s3://{BUCKET}/monitoring/run-1/ground_truth/",
             "schema": f"s3://{BUCKET}/runs/train-1/processed/schema/schema.json",
             "output": f"s3://{BUCKET}/retraining/run-1/"}
    out = retraining.handler(event, None)
    assert out == {"input_s3_uri": f"s3://{BUCKET}/retraining/run-1/", "labelled_records": 2, "previous_objects": 1,
                   "start": {"input_s3_uri": f"s3://{BUCKET}/retraining/run-1/"},
                   "skipped": {"unlabelled": 0, "unreadable": 0, "label_count_mismatch": 0}}
    labelled = s3.get_object(Bucket=BUCKET, Key="retraining/run-1/labelled.csv")["Body"].read().decode()
    assert labelled == "sex,length,weight,rings\nM,0.4,0.5,9\nF,0.5,0.6,11\n"
    previous = s3.get_object(Bucket=BUCKET, Key="retraining/run-1/previous-0000-table.csv")["Body"].read()
    assert previous == s3.get_object(Bucket=BUCKET, Key="raw/table.csv")["Body"].read()
    # nothing labelled: nothing written, the state machine notifies instead of retraining on old data
    s3.delete_object(Bucket=BUCKET, Key="monitoring/run-1/ground_truth/2026/01/31/11/l.jsonl")
    out = retraining.handler({**event, "output": f"s3://{BUCKET}/retraining/run-2/"}, None)
    assert out["labelled_records"] == 0 and "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="retraining/run-2/")

"""The capture report from capture files in SageMaker's format (written by the emulator's capture
writer), for a classifier: the numbers per hour, the confidence histogram against the threshold, the
features against the baseline preprocess.py wrote, a PNG and a self-contained page. (The e2e test draws
one for a regression from a real endpoint's capture.)"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sys
from pathlib import Path

import pytest

from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.capture import CaptureConfig, CaptureWriter
from processing_scripts import capture_report, preprocess

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import user_tables

CONFIG = CaptureConfig.from_request({
    "DestinationS3Uri": "s3://bucket/capture", "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}})


@pytest.fixture(scope="module")
def churn(tmp_path_factory) -> tuple[Path, list[str]]:
    """preprocess.py's schema folder for the churn table, and the table's raw rows without the target."""
    folder = tmp_path_factory.mktemp("churn")
    table = user_tables.churn(folder, rows=400)
    preprocess.run(preprocess.Options(table, folder / "out", "churn"))
    schema = json.loads((folder / "out" / "schema" / "schema.json").read_text())
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    body = io.StringIO()
    csv.writer(body, lineterminator="\n").writerows([[r[c] for c in schema["input_columns"]] for r in rows])
    return folder / "out" / "schema", body.getvalue().splitlines()


def write_capture(root: Path, rows: list[str]) -> None:
    """Three hours of traffic: 10, 20, 30 requests of 2 records; every 5th answer below 0.7 confidence."""
    s3 = LocalS3(root)
    s3.create_bucket("bucket")
    start = dt.datetime(2026, 11, 30, 5, 10, tzinfo=dt.UTC).timestamp()
    clock = [start]
    writer = CaptureWriter(s3, clock=lambda: clock[0])
    count = 0
    for hour, requests in enumerate((10, 20, 30)):
        for i in range(requests):
            clock[0] = start + hour * 3600 + i * 60
            answers = []
            for _ in range(2):
                count += 1
                answers.append(f"{'yes' if count % 2 else 'no'},{0.55 if count % 5 == 0 else 0.9}\n")
            writer.capture("ep", "AllTraffic", CONFIG, request="\n".join(rows[count - 2:count]).encode(),
                           request_type="text/csv", response="".join(answers).encode(), response_type="text/csv")
    writer.close()


def test_a_classifiers_report_counts_what_the_capture_holds(churn, tmp_path):
    schema_dir, rows = churn
    write_capture(tmp_path / "s3", rows)
    capture = tmp_path / "s3" / "bucket" / "capture" / "ep"
    assert capture_report.main(["--capture-dir", str(capture), "--schema-dir", str(schema_dir), "--output-dir",
                                str(tmp_path / "report"), "--run", "r1"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [h["hour"] for h in report["hours"]] == ["2026-11-30T05:00Z", "2026-11-30T06:00Z", "2026-11-30T07:00Z"]
    assert [h["requests"] for h in report["hours"]] == [10, 20, 30]
    assert [h["records"] for h in report["hours"]] == [20, 40, 60]
    assert [h["low_confidence"] for h in report["hours"]] == [4, 8, 12]
    assert report["hours"][0]["predictions"] == {"no": 10, "yes": 10}
    histogram = report["confidence"]["histogram"]
    assert sum(histogram["counts"]) == 120 and report["confidence"]["threshold"] == 0.7
    assert histogram["counts"][11] == 24 and histogram["counts"][18] == 96  # [0.55, 0.6) and [0.9, 0.95)
    features = report["features"]
    assert set(features) == set(json.loads((schema_dir / "schema.json").read_text())["input_columns"])
    assert features["plan"]["kind"] == "categorical" and set(features["plan"]["live_fractions"]) <= {"basic", "pro", "premium"}
    tenure = features["tenure_months"]
    assert tenure["values"] == 120 and tenure["histogram"]["bin_edges"] == tenure["training_histogram"]["bin_edges"]

    png = (tmp_path / "report" / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    page = (tmp_path / "report" / "report.html").read_text()
    assert "data:image/png;base64," in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page), "nothing is loaded from anywhere"
    assert "2026-11-30T07:00Z" in page and "20.0%" in page


def test_a_stricter_threshold_counts_more_and_no_capture_is_named(churn, tmp_path, capsys):
    schema_dir, rows = churn
    write_capture(tmp_path / "s3", rows)
    capture = tmp_path / "s3" / "bucket" / "capture" / "ep"
    report = capture_report.build_report(capture, schema_dir, tmp_path / "strict", "r2", threshold=0.95)
    assert report["low_confidence"] == 120
    (tmp_path / "empty").mkdir()
    assert capture_report.main(["--capture-dir", str(tmp_path / "empty"), "--schema-dir", str(schema_dir),
                                "--output-dir", str(tmp_path / "none"), "--run", "r3"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("NoCaptureFiles: No capture line under")

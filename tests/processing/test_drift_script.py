"""drift.py and its baseline on the real sample tables: preprocess writes Model Monitor's statistics and
constraints, capture files of real rows are analysed in-process, unshifted traffic raises nothing,
shifted features are named exactly, and live quality joins ground truth to a real model's answers."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import drift_traffic as traffic
import numpy as np
import pandas as pd
import pytest

from processing_scripts import drift, evaluate, preprocess
from processing_scripts import monitor_baseline as mb

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
SCRIPTS = Path(drift.__file__).parent
ROWS = 2000
PER_REQUEST = 4  # rows per request in the live-quality traffic (one label per row in its ground truth)


def preprocessed(folder: Path, dataset: str, *extra: str) -> Path:
    assert preprocess.main(["--input-dir", str(DATA / f"{dataset}.csv"), "--output-dir", str(folder),
                            "--target-column", traffic.TARGETS[dataset], *extra]) == 0
    return folder / "schema"


@pytest.fixture(scope="module")
def abalone(tmp_path_factory) -> Path:
    return preprocessed(tmp_path_factory.mktemp("abalone"), "abalone")


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Path:
    return preprocessed(tmp_path_factory.mktemp("bank"), "bank-marketing", "--drift-threshold", "0.15")


@pytest.fixture(scope="module")
def pools() -> dict[str, pd.DataFrame]:
    return {dataset: traffic.held_out(dataset) for dataset in traffic.TARGETS}


def analyse(tmp_path: Path, baseline: Path, rows: pd.DataFrame, name: str = "run", **write) -> dict:
    """Capture files of ``rows``, drift.py run on them in-process; the summary with the violations."""
    capture, out = tmp_path / name / "capture", tmp_path / name / "out"
    traffic.write_capture(capture, rows, **write)
    assert drift.main(["--capture-dir", str(capture), "--baseline-dir", str(baseline), "--output-dir", str(out)]) == 0
    summary = json.loads((out / "drift_summary.json").read_text())
    summary["violations"] = json.loads((out / "constraint_violations.json").read_text())["violations"]
    summary["report"] = (out / "report.html").read_text()
    return summary


def checks(summary: dict) -> set[tuple[str, str]]:
    return {(v["feature_name"], v["constraint_check_type"]) for v in summary["violations"]}


# ---------------------------------------------------------------------------------------------- baseline


def test_statistics_are_model_monitors_format_computed_on_the_raw_train_rows(abalone):
    statistics = json.loads((abalone / "statistics.json").read_text())
    train, _ = traffic.split_rows("abalone")
    assert statistics["version"] == 0 and statistics["dataset"] == {"item_count": len(train)}
    features = {f["name"]: f for f in statistics["features"]}
    assert list(features) == list(train.columns)
    sex = features["sex"]
    assert sex["inferred_type"] == "String"
    counts = {b["value"]: b["count"] for b in sex["string_statistics"]["distribution"]["categorical"]["buckets"]}
    assert counts == train["sex"].str.strip().str.casefold().value_counts().astype(float).to_dict()
    length = features["length"]["numerical_statistics"]
    values = train["length"].astype(float)
    assert features["length"]["inferred_type"] == "Fractional"
    assert length["common"] == {"num_present": len(train), "num_missing": 0}
    assert length["mean"] == pytest.approx(values.mean()) and length["sum"] == pytest.approx(values.sum())
    assert length["std_dev"] == pytest.approx(values.std(ddof=0))
    assert (length["min"], length["max"]) == (values.min(), values.max())
    buckets = length["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10 and buckets[0]["lower_bound"] == values.min() and buckets[-1]["upper_bound"] == values.max()
    # the train split fits in the sample, so the buckets are exact counts
    exact, _ = np.histogram(values, bins=[b["lower_bound"] for b in buckets] + [values.max()])
    assert [b["count"] for b in buckets] == exact.tolist()
    assert sorted(length["distribution"]["sample"]["values"]) == sorted(values.tolist())


def test_constraints_carry_completeness_domains_and_the_drift_threshold_setting(bank):
    constraints = json.loads((bank / "constraints.json").read_text())
    features = {f["name"]: f for f in constraints["features"]}
    assert features["age"]["inferred_type"] == "Integral" and features["age"]["completeness"] == 1.0
    assert features["balance"]["num_constraints"] == {"is_non_negative": False}
    assert features["marital"]["string_constraints"]["domains"] == ["divorced", "married", "single"]
    distribution = constraints["monitoring_config"]["distribution_constraints"]
    assert distribution["comparison_threshold"] == distribution["categorical_comparison_threshold"] == 0.15
    assert constraints["monitoring_config"]["datatype_check_threshold"] == 0.1


def test_accumulators_fed_in_chunks_and_shards_give_the_whole_tables_baseline():
    rows, target = traffic.table("bank-marketing")
    rows = rows.drop(columns=[target])
    rows["balance"] = rows["balance"].astype(float)
    rows.loc[::17, "balance"] = np.nan  # gaps, counted as missing
    columns = {name: mb.NUMERIC if name in ("age", "balance", "duration") else mb.CATEGORICAL for name in rows}
    whole, whole_constraints = mb.BaselineAccumulator(columns, sample_size=500).update(rows).finish()
    shards = [mb.BaselineAccumulator(columns, sample_size=500) for _ in range(3)]
    for number, start in enumerate(range(0, len(rows), 777)):
        shards[number % 3].update(rows.iloc[start:start + 777])
    merged, merged_constraints = shards[2].merge(shards[0]).merge(shards[1]).finish()
    assert merged_constraints == whole_constraints
    for a, b in zip(whole["features"], merged["features"]):
        if a["inferred_type"] == "String":
            assert a == b
            continue
        x, y = a["numerical_statistics"], b["numerical_statistics"]
        assert x["common"] == y["common"] and (x["min"], x["max"]) == (y["min"], y["max"])
        assert x["mean"] == pytest.approx(y["mean"]) and x["std_dev"] == pytest.approx(y["std_dev"])
        # the same 500 values kept however the rows came, so the same buckets
        assert x["distribution"] == y["distribution"]
        assert sum(b["count"] for b in x["distribution"]["kll"]["buckets"]) == x["common"]["num_present"]
    balance = next(f for f in whole["features"] if f["name"] == "balance")["numerical_statistics"]
    assert balance["common"]["num_missing"] == len(rows[::17])
    assert balance["mean"] == pytest.approx(rows["balance"].mean())


# ---------------------------------------------------------------------------------------------- drift


@pytest.mark.parametrize("dataset", list(traffic.TARGETS))
def test_ten_fresh_samples_of_unshifted_traffic_raise_no_violation(dataset, abalone, bank, pools, tmp_path):
    baseline = {"abalone": abalone, "bank-marketing": bank}[dataset]
    rng = np.random.default_rng(10)
    for run in range(10):
        rows = pools[dataset].iloc[rng.integers(0, len(pools[dataset]), ROWS)].reset_index(drop=True)
        summary = analyse(tmp_path, baseline, rows, f"run{run}", rows_per_request=int(rng.integers(1, 6)))
        assert summary["violations"] == [], summary["violations"]
        assert summary["row_count"] == ROWS and summary["drifted_feature_share"] == 0.0
        assert summary["max_psi"] < 0.05


@pytest.mark.parametrize(("dataset", "numeric", "categorical", "mix"), [
    ("abalone", "shell weight", "sex", {"M": 0.7, "F": 0.15, "I": 0.15}),
    ("bank-marketing", "age", "marital", {"married": 0.3, "single": 0.6, "divorced": 0.1}),
])
def test_a_shifted_numeric_and_a_changed_categorical_mix_are_named_exactly(dataset, numeric, categorical, mix,
                                                                          abalone, bank, pools, tmp_path):
    baseline = {"abalone": abalone, "bank-marketing": bank}[dataset]
    statistics = {f["name"]: f for f in json.loads((baseline / "statistics.json").read_text())["features"]}
    std = statistics[numeric]["numerical_statistics"]["std_dev"]
    rng = np.random.default_rng(3)
    rows = pools[dataset].iloc[rng.integers(0, len(pools[dataset]), ROWS)].reset_index(drop=True)
    summary = analyse(tmp_path, baseline, traffic.shifted(rows, numeric, std, 3.0, categorical, mix, rng))
    assert checks(summary) == {(numeric, "baseline_drift_check"), (categorical, "baseline_drift_check")}
    assert summary["drifted_features"] == [name for name in statistics if name in (numeric, categorical)]
    assert summary["features"][numeric]["ks_pvalue"] < 1e-10 and summary["features"][categorical]["chi2_pvalue"] < 1e-10
    assert summary["drifted_feature_share"] == pytest.approx(2 / len(statistics))
    assert summary["max_psi"] == summary["features"][numeric]["psi"] > 1
    # the report is one self-contained page naming them
    report = summary["report"]
    assert "http://" not in report and "https://" not in report and "<script" not in report and "src=" not in report
    assert report.count("drifted</span>") == 2 and "<svg" in report


def test_csv_json_base64_and_multi_row_requests_decode_to_the_same_rows(bank, pools, tmp_path):
    rows = pools["bank-marketing"].head(600)
    baseline_rows = analyse(tmp_path, bank, rows, "single")
    typed = rows.copy()  # JSON clients send numbers as numbers
    for column in ("age", "balance", "day", "duration", "campaign", "pdays", "previous"):
        typed[column] = pd.to_numeric(typed[column])
    for name, sent, write in (("multi", rows, {"rows_per_request": 7}),
                              ("json", typed, {"rows_per_request": 5, "content": "json"}),
                              ("base64", rows, {"rows_per_request": 3, "content": "base64"})):
        summary = analyse(tmp_path, bank, sent, name, **write)
        assert summary["row_count"] == 600 and summary["violations"] == []
        for feature, entry in summary["features"].items():
            assert entry["psi"] == pytest.approx(baseline_rows["features"][feature]["psi"]), (name, feature)
    # a request that starts with the table's header line: the header is skipped, as the featurizer does
    capture = tmp_path / "with-header" / "capture"
    traffic.write_capture(capture, rows, rows_per_request=600)
    path = next(capture.rglob("*.jsonl"))
    record = json.loads(path.read_text())
    record["captureData"]["endpointInput"]["data"] = ",".join(rows.columns) + "\n" + \
        record["captureData"]["endpointInput"]["data"]
    path.write_text(json.dumps(record) + "\n")
    out = tmp_path / "with-header" / "out"
    assert drift.main(["--capture-dir", str(capture), "--baseline-dir", str(bank), "--output-dir", str(out)]) == 0
    summary = json.loads((out / "drift_summary.json").read_text())
    assert summary["record_count"] == 1 and summary["row_count"] == 600 and summary["violation_count"] == 0


def test_malformed_traffic_is_named_by_model_monitor_check(bank, pools, tmp_path):
    rng = np.random.default_rng(5)
    rows = pools["bank-marketing"].iloc[rng.integers(0, 3350, ROWS)].reset_index(drop=True)
    rows.loc[:399, "balance"] = "unknown"  # 20% text in a numeric column
    rows.loc[400:999, "pdays"] = ""  # 30% missing where training had every value
    rows.loc[1000:1399, "job"] = "astronaut"  # 20% outside the job domain
    capture = tmp_path / "bad" / "capture"
    traffic.write_capture(capture, rows, rows_per_request=4)
    short = rows.head(30).copy()
    traffic.write_capture(capture, short, hour="2026/11/30/08")
    for path in (capture / "ml-pipeline-endpoint" / "AllTraffic" / "2026/11/30/08").glob("*.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for record in records:  # the last cell cut off: one column short
            data = record["captureData"]["endpointInput"]["data"]
            record["captureData"]["endpointInput"]["data"] = data.rstrip("\n").rsplit(",", 1)[0] + "\n"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    json_rows = rows.iloc[1500:1520].drop(columns=["loan"]).assign(customer_id="c1")
    traffic.write_capture(capture, json_rows, content="json", hour="2026/11/30/09")
    out = tmp_path / "bad" / "out"
    assert drift.main(["--capture-dir", str(capture), "--baseline-dir", str(bank), "--output-dir", str(out)]) == 0
    violations = json.loads((out / "constraint_violations.json").read_text())["violations"]
    found = {(v["feature_name"], v["constraint_check_type"]) for v in violations}
    assert {("balance", "data_type_check"), ("pdays", "completeness_check"), ("job", "categorical_values_check"),
            ("poutcome", "missing_column_check"), ("loan", "missing_column_check"),
            ("customer_id", "extra_column_check")} <= found
    described = {(v["feature_name"], v["constraint_check_type"]): v["description"] for v in violations}
    assert "400 of 2020 present values (19.80%) are not numbers (e.g. 'unknown')" in described[("balance", "data_type_check")]
    assert "30 of 2050 rows" in described[("poutcome", "missing_column_check")]
    assert "'astronaut'" in described[("job", "categorical_values_check")]
    # every check is one of Model Monitor's types
    assert {v["constraint_check_type"] for v in violations} <= {
        "data_type_check", "completeness_check", "baseline_drift_check", "missing_column_check",
        "extra_column_check", "categorical_values_check"}


def test_bad_inputs_stop_with_a_named_error(abalone, pools, tmp_path):
    failure = tmp_path / "failure"
    assert drift.main(["--capture-dir", str(tmp_path), "--baseline-dir", str(tmp_path / "none"),
                       "--output-dir", str(tmp_path / "out"), "--failure-file", str(failure)]) == 1
    assert failure.read_text().startswith("BaselineNotFound: No statistics.json under")
    (tmp_path / "capture").mkdir()
    assert drift.main(["--capture-dir", str(tmp_path / "capture"), "--baseline-dir", str(abalone),
                       "--output-dir", str(tmp_path / "out"), "--failure-file", str(failure)]) == 1
    assert failure.read_text().startswith("NoCapturedRecords: No capture records under")
    # quality settings that do not fit the model (judged once labels join the answers) name the argument
    labelled = tmp_path / "labelled"
    ids = traffic.write_capture(labelled / "capture", pools["abalone"].head(20))  # every answer "0"
    traffic.write_ground_truth(labelled / "truth", {event: "10" for event in ids})
    for setting, message in ((["--quality-metric", "auc"], "--quality-metric auc does not fit a regression model"),
                             (["--quality-threshold", "high"], "--quality-threshold 'high' must be a number or auto")):
        assert drift.main(["--capture-dir", str(labelled / "capture"), "--baseline-dir", str(abalone),
                           "--ground-truth-dir", str(labelled / "truth"), "--output-dir", str(tmp_path / "out"),
                           "--failure-file", str(failure), *setting]) == 1
        assert failure.read_text().startswith(f"InvalidArgumentError: {message}")
    assert not (tmp_path / "out").exists()


def test_drift_runs_as_a_script_from_a_flat_code_folder(bank, pools, tmp_path):
    """As the job runs it: the folder uploaded as it is, drift.py and its parts imported without a package;
    the same three files as the in-process run."""
    code = tmp_path / "code"
    shutil.copytree(SCRIPTS, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    rows = pools["bank-marketing"].head(300).copy()
    rows.loc[:59, "balance"] = "unknown"  # a violation, so the checks' descriptions are compared too
    traffic.write_capture(tmp_path / "capture", rows, rows_per_request=3)
    args = ["--capture-dir", str(tmp_path / "capture"), "--baseline-dir", str(bank)]
    assert drift.main([*args, "--output-dir", str(tmp_path / "in-process")]) == 0
    proc = subprocess.run([sys.executable, str(code / "drift.py"), *args, "--output-dir", str(tmp_path / "script")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in drift.OUTPUT_FILES:
        assert (tmp_path / "script" / name).read_bytes() == (tmp_path / "in-process" / name).read_bytes(), name
    assert "data_type_check" in (tmp_path / "script" / "constraint_violations.json").read_text()


def test_the_drift_modules_import_one_way():
    """drift_stats <- drift_checks; drift.py (the job) imports its parts and no part imports it."""
    allowed = {"drift_stats": set(), "drift_checks": {"drift_stats"}, "live_quality": set(), "drift_report": set(),
               "drift": {"drift_checks", "live_quality", "drift_report"}}
    for name, parts in allowed.items():
        tree = ast.parse((SCRIPTS / f"{name}.py").read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                    for alias in node.names}
        assert imported & set(allowed) <= parts, name


# ---------------------------------------------------------------------------------------------- quality


@pytest.fixture(scope="module")
def served_bank(tmp_path_factory):
    """A real model of bank-marketing behind its real serial pipeline (featurizer -> XGBoost -> label
    decoder, in process), and a baseline folder holding the schema files and its evaluation.json."""
    sys.path.insert(0, str(ROOT / "tests" / "containers"))
    from pipeline_helpers import build

    from containers.pipeline import load_model

    folder = tmp_path_factory.mktemp("served")
    model = build("bank-marketing.csv", folder, rounds=30)
    archive = folder / "archive"
    archive.mkdir()
    with tarfile.open(archive / "model.tar.gz", "w:gz") as tar:
        tar.add(model.folder / "model" / "xgboost-model", arcname="xgboost-model")
    baseline = folder / "baseline"
    shutil.copytree(model.folder / "out" / "schema", baseline)
    assert evaluate.main(["--model-dir", str(archive), "--test-dir", str(model.folder / "out" / "test"),
                          "--schema-dir", str(baseline), "--output-dir", str(baseline)]) == 0
    return model, load_model(model.containers), baseline


@pytest.fixture(scope="module")
def answered(served_bank, tmp_path_factory) -> tuple[Path, list[str], list[str]]:
    """800 held-out rows sent through the pipeline four at a time (answers half CSV, half JSON) and
    captured: (capture folder, event ids, the rows' true labels)."""
    _, pipeline, _ = served_bank
    target = traffic.TARGETS["bank-marketing"]
    rows = traffic.split_rows("bank-marketing", with_target=True)[1].head(800)
    answers = []
    for start in range(0, len(rows), PER_REQUEST):
        body = traffic.csv_text(rows.drop(columns=[target]).iloc[start:start + PER_REQUEST]).encode()
        answer = pipeline.invoke(body, "text/csv", "application/json" if start % (2 * PER_REQUEST) else "text/csv")
        assert answer.status == 200
        answers.append(answer.body.decode())
    capture = tmp_path_factory.mktemp("answered") / "capture"
    ids = traffic.write_capture(capture, rows.drop(columns=[target]), rows_per_request=PER_REQUEST, answers=answers)
    for path in capture.rglob("*.jsonl"):  # the answer's real content type
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for record in records:
            if record["captureData"]["endpointOutput"]["data"].startswith("{"):
                record["captureData"]["endpointOutput"]["observedContentType"] = "application/json"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return capture, ids, rows[target].tolist()


def labelled_traffic(tmp_path: Path, served_bank, answered, flip: float) -> dict:
    """drift.py on the answered traffic with its true labels as ground truth, a share ``flip`` swapped."""
    capture, ids, labels = answered
    rng = np.random.default_rng(7)
    swapped = rng.random(len(labels)) < flip
    labels = [{"yes": "no", "no": "yes"}[label] if swap else label for label, swap in zip(labels, swapped)]
    truth, out = tmp_path / "truth", tmp_path / "out"
    traffic.write_ground_truth(truth, {event: "\n".join(labels[PER_REQUEST * i:PER_REQUEST * (i + 1)])
                                       for i, event in enumerate(ids)})
    assert drift.main(["--capture-dir", str(capture), "--baseline-dir", str(served_bank[2]), "--output-dir", str(out),
                       "--ground-truth-dir", str(truth)]) == 0
    return json.loads((out / "drift_summary.json").read_text())


def test_live_quality_on_true_labels_matches_the_champion_and_is_not_degraded(served_bank, answered, tmp_path):
    summary = labelled_traffic(tmp_path, served_bank, answered, flip=0.0)
    quality = summary["live_quality"]
    champion = json.loads((served_bank[2] / "evaluation.json").read_text())["metrics"]["auc"]
    assert quality["metric"] == "auc" and quality["records"] == 800 and quality["unmatched_records"] == 0
    assert quality["champion_value"] == champion
    assert abs(quality["value"] - champion) < 0.05
    assert quality["bar"] == pytest.approx(champion - 0.1)  # --quality-tolerance 0.1 below the champion
    assert quality["interval"] is None  # the point estimate meets the bar: no interval needed
    assert summary["quality_degraded"] is False


def test_live_quality_on_labels_the_model_now_gets_wrong_is_degraded(served_bank, answered, tmp_path):
    summary = labelled_traffic(tmp_path, served_bank, answered, flip=0.35)
    quality = summary["live_quality"]
    assert quality["value"] < quality["bar"] < quality["champion_value"]
    assert quality["interval"][0] < quality["value"] < quality["interval"][1] < quality["bar"]
    assert summary["quality_degraded"] is True
    assert summary["violation_count"] == 0  # the inputs did not move: the labels alone say it


def test_regression_live_rmse_against_the_champion(abalone, tmp_path):
    """abalone: an XGBoost model of the train split answers the held-out rows (label decoder, CSV values);
    true rings keep the rmse near the champion's, rings four higher push it past the bar."""
    import xgboost as xgb

    from processing_scripts.serving.label_decoder import LabelDecoder

    schema = json.loads((abalone / "schema.json").read_text())
    train = np.loadtxt(abalone.parent / "train" / "train.csv", delimiter=",")
    test = np.loadtxt(abalone.parent / "test" / "test.csv", delimiter=",")
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 4, "eta": 0.3, "nthread": 1},
                        xgb.DMatrix(train[:, 1:], label=train[:, 0]), 30)
    baseline = tmp_path / "baseline"
    shutil.copytree(abalone, baseline)
    evaluate.write_json_atomically(baseline / "evaluation.json",
                                   evaluate.evaluate_with_scores(booster, test[:, 1:], test[:, 0], schema)[0])
    rows = traffic.split_rows("abalone", with_target=True)[1].head(600)
    features = rows.drop(columns=["rings"])
    scores = booster.predict(xgb.DMatrix(preprocess.transform_with_schema(schema, features.astype(
        {c: float for c in features.columns if c != "sex"})))).tolist()
    decoder = LabelDecoder("regression", None)
    answers = [decoder.encode(decoder.decode([score]), "text/csv")[0] for score in scores]
    capture = tmp_path / "capture"
    ids = traffic.write_capture(capture, features, answers=answers)
    champion = json.loads((baseline / "evaluation.json").read_text())["metrics"]["rmse"]
    for offset, degraded in ((0, False), (4, True)):
        truth, out = tmp_path / f"truth{offset}", tmp_path / f"out{offset}"
        traffic.write_ground_truth(truth, {event: str(int(r) + offset) for event, r in zip(ids, rows["rings"])})
        assert drift.main(["--capture-dir", str(capture), "--baseline-dir", str(baseline), "--output-dir", str(out),
                           "--ground-truth-dir", str(truth)]) == 0
        summary = json.loads((out / "drift_summary.json").read_text())
        quality = summary["live_quality"]
        assert quality["metric"] == "rmse" and quality["records"] == 600 and quality["champion_value"] == champion
        assert quality["bar"] == pytest.approx(champion * 1.1)
        assert summary["quality_degraded"] is degraded
        assert (quality["value"] > quality["bar"]) is degraded and summary["violation_count"] == 0
    assert quality["interval"][0] > quality["bar"]

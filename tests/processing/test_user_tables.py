"""Tables nobody here wrote (tests/user_tables.py), through preprocess -> the XGBoost twin with the
default hyperparameters -> evaluate -> the quality gate with quality_metric/threshold auto."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import user_tables
import xgboost as xgb
import xgboost_runs
from sklearn import metrics as skm

from lambdas.quality_gate import handler as gate
from lambdas.validate_input.handler import XGBOOST_SETUP
from processing_scripts import preprocess
from processing_scripts import problem_rules as rules
from stacks.config import PipelineConfig

TABLES = user_tables.TABLES
# cdk.json's hyperparameters; nthread=1 keeps a busy 2-core CI machine's timing steady (same model).
DEFAULTS = {**PipelineConfig().hyperparameters, "nthread": "1"}


def preprocessed(path: Path, target: str, out: Path, *extra: str) -> dict:
    assert preprocess.main(["--input-dir", str(path), "--output-dir", str(out), "--target-column", target,
                            *extra]) == 0
    return json.loads((out / "schema" / "schema.json").read_text())


def split(out: Path, name: str) -> np.ndarray:
    return np.loadtxt(out / name / f"{name}.csv", delimiter=",", ndmin=2)


def train_and_evaluate(splits: Path, schema: dict, work: Path) -> dict:
    """The pipeline's own path: the twin trains on train/validation, evaluate.py scores test."""
    objective, eval_metric, _, _ = XGBOOST_SETUP[schema["problem_type"]]
    hyperparameters = {**DEFAULTS, "objective": objective, "eval_metric": eval_metric}
    if schema["problem_type"] == "multiclass":
        hyperparameters["num_class"] = str(schema["num_classes"])
    return xgboost_runs.train_and_evaluate(splits, hyperparameters, work)


def gate_auto(evaluation: dict, champion: dict | None = None) -> dict:
    metric = rules.metric_for(evaluation["problem_type"], "auto")
    return gate.decide(evaluation, champion, metric=metric, threshold="auto",
                       direction=rules.ALL_METRICS[metric].direction, no_worse_than_champion=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    """Every table through the whole in-process pipeline once; the tests below read the results."""
    results = {}
    for name, table in TABLES.items():
        work = tmp_path_factory.mktemp(name)
        path = table.write(work)
        schema = preprocessed(path, table.target, work / "splits")
        evaluation = train_and_evaluate(work / "splits", schema, work)
        results[name] = {"path": path, "splits": work / "splits", "schema": schema, "evaluation": evaluation,
                         "gate": gate_auto(evaluation)}
    return results


# --- end to end: the right problem type, the gate passes the learnable, refuses the noise --------


@pytest.mark.parametrize("name", list(TABLES))
def test_each_table_gets_its_problem_type_and_the_gate_decides_on_the_baseline(runs, name):
    run, table = runs[name], TABLES[name]
    assert run["schema"]["problem_type"] == run["evaluation"]["problem_type"] == table.problem_type
    assert run["evaluation"]["target_column"] == table.target
    decision = run["gate"]
    assert decision["metric"] == rules.AUTO_METRIC[table.problem_type]
    assert decision["baseline_value"] is not None
    assert "naive baseline" in decision["reason"] and "on the same test split" in decision["reason"]
    assert decision["passed"] is table.learnable, decision["reason"]


@pytest.mark.parametrize("name", [n for n, t in TABLES.items() if not t.learnable])
def test_a_pure_noise_target_is_refused_with_the_baseline_in_the_cause(runs, name):
    decision = runs[name]["gate"]
    assert not decision["passed"]
    assert decision["reason"].startswith(f"{decision['metric']} ") and "does not meet the threshold (auto:" in decision["reason"]
    assert f"scores {decision['metric']} {decision['baseline_value']:.6g} on the same test split" in decision["reason"]


def raw_rows(run: dict, table: user_tables.Table) -> tuple[pd.DataFrame, np.ndarray, tuple[np.ndarray, ...]]:
    """The rows preprocess trained on, as a client parses the file (features by pandas' inference,
    ID column and all), their encoded labels and the train/validation/test positions."""
    raw = pd.read_csv(run["path"], skipinitialspace=True)
    text = pd.read_csv(run["path"], skipinitialspace=True, dtype={table.target: object})
    labelled = ~text[table.target].map(rules.is_missing)
    repeated = text.assign(**{table.target: text[table.target].map(rules.label_key)})[labelled].duplicated()
    kept = raw[labelled][~repeated.to_numpy()].reset_index(drop=True)
    data, _, _ = preprocess.labelled_rows(text, table.target)
    assert len(kept) == len(data)
    y = preprocess.encode_target(data[table.target], preprocess.decide_target(text[table.target], "auto", table.target))
    options = preprocess.Options(run["path"], run["splits"], table.target)
    return kept, y, preprocess.split_indices(y, run["schema"]["problem_type"], options)


def _plain_xgboost_score(run: dict, table: user_tables.Table) -> float:
    """A default XGBClassifier/XGBRegressor on the same train rows, scored on the same test rows,
    features as pandas reads them (text as category codes): what a user would try first."""
    rows, y, (train, _, test) = raw_rows(run, table)
    x = rows.drop(columns=[table.target])
    for column in x.columns:
        if not pd.api.types.is_numeric_dtype(x[column]):
            x[column] = x[column].astype("category").cat.codes
    if table.problem_type == "regression":
        model = xgb.XGBRegressor(n_jobs=1).fit(x.iloc[train], y[train])
        return float(np.sqrt(skm.mean_squared_error(y[test], model.predict(x.iloc[test]))))
    model = xgb.XGBClassifier(n_jobs=1).fit(x.iloc[train], y[train])
    if table.problem_type == "binary":
        return float(skm.roc_auc_score(y[test], model.predict_proba(x.iloc[test])[:, 1]))
    return float(skm.f1_score(y[test], model.predict(x.iloc[test]), average="weighted"))


@pytest.mark.parametrize("name", [n for n, t in TABLES.items() if t.learnable])
def test_the_model_is_within_a_few_points_of_a_plain_xgboost(runs, name):
    run, table = runs[name], TABLES[name]
    ours = run["gate"]["value"]
    plain = _plain_xgboost_score(run, table)
    if table.problem_type == "regression":
        assert ours <= plain * 1.05, (ours, plain)  # rmse: at most 5% worse
    else:
        assert ours >= plain - 0.03, (ours, plain)  # auc / f1_weighted: at most 3 points lower


# --- preprocess on the messy churn table: every hygiene decision, in schema.json ----------------


def test_churn_labels_merge_six_spellings_into_two_classes(runs):
    schema = runs["churn"]["schema"]
    assert schema["problem_type"] == "binary" and schema["num_classes"] == 2
    assert schema["label_mapping"] == {"0": "no", "1": "Yes"}
    assert schema["label_spellings_merged"] == {"no": ["NO", "No", "no"], "Yes": ["YES", "Yes", "yes"]}
    assert schema["row_counts"]["dropped_null_target"] == 60
    assert "60 of 1500 rows have no value in target 'churn': dropped" in schema["report"]


def test_churn_customer_id_is_dropped_and_the_date_becomes_numbers(runs):
    schema = runs["churn"]["schema"]
    assert {"name": "customer_id", "reason": "unique per row, an identifier"} in schema["dropped_columns"]
    assert not any("customer_id" in f for f in schema["feature_names"])
    date = next(c for c in schema["source_columns"] if c["name"] == "signup_date")
    assert date["kind"] == "date" and date["date_format"] == "%Y-%m-%d"
    assert [f for f in schema["feature_names"] if f.startswith("signup_date")] == [
        "signup_date_year", "signup_date_month", "signup_date_dayofweek", "signup_date_days_since_first"]
    assert any(line.startswith("signup_date: read as dates") for line in schema["report"])
    assert "customer_id: dropped (unique per row, an identifier)" in schema["report"]


def test_churn_plan_spellings_are_one_category(runs):
    schema = runs["churn"]["schema"]
    plan = next(c for c in schema["source_columns"] if c["name"] == "plan")
    assert plan["categories"] == ["basic", "premium", "pro"] and plan["labels"] == ["Basic", "Premium", "Pro"]
    assert [f for f in schema["feature_names"] if f.startswith("plan=")] == ["plan=Basic", "plan=Premium", "plan=Pro"]
    line = next(line for line in schema["report"] if line.startswith("plan: spellings merged:"))
    assert "['PRO', 'Pro', 'pro'] -> 'Pro'" in line
    encoded = preprocess.transform_with_schema(schema, pd.DataFrame({
        **{c["name"]: [None] * 5 for c in schema["source_columns"]},
        "plan": ["Pro", "pro ", " PRO", "premium", "Gold"]}))
    columns = [schema["feature_names"].index(f"plan={p}") for p in ("Basic", "Premium", "Pro")]
    assert encoded[:, columns].tolist() == [[0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 1, 0], [0, 0, 0]]


@pytest.mark.parametrize("name", list(TABLES))
def test_transform_with_schema_reproduces_every_split_from_raw_rows(runs, name):
    """The featurizer's contract: schema.json + the raw rows (ID column and all) -> the exact splits."""
    run, table = runs[name], TABLES[name]
    rows, _, positions = raw_rows(run, table)
    for split_name, where in zip(("train", "validation", "test"), positions):
        features = preprocess.transform_with_schema(run["schema"], rows.drop(columns=[table.target]).iloc[where])
        np.testing.assert_array_equal(features, split(run["splits"], split_name)[:, 1:], err_msg=split_name)


def test_ids_indexes_and_constants_are_dropped_and_measurements_kept(tmp_path):
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame({
        "row": np.arange(1000, 1000 + n),  # a monotonic integer index
        "OrderId": rng.permutation(n) + 5000,  # unique integers named like an ID
        "ticket": [f"T-{v}" for v in rng.permutation(n)],  # unique text
        "weight": rng.normal(70, 10, n).round(6),  # unique floats: a measurement
        "income": rng.permutation(n) * 37 + 20000,  # unique integers, not an index, not named like one
        "country": ["US"] * n,  # constant
        "segment": rng.choice(["a", "B", "b "], n),
    })
    frame["spend"] = frame["weight"] * 3 + (frame["segment"].str.strip().str.lower() == "b") * 20 + rng.normal(0, 5, n)
    frame.to_csv(tmp_path / "raw.csv", index=False)
    schema = preprocessed(tmp_path / "raw.csv", "spend", tmp_path / "out")
    dropped = {d["name"]: d["reason"] for d in schema["dropped_columns"]}
    assert dropped == {"row": "a monotonic integer index", "OrderId": "unique integers named like an identifier",
                       "ticket": "unique per row, an identifier",
                       "country": "constant ('US' in every train row)"}
    assert {c["name"] for c in schema["source_columns"]} == {"weight", "income", "segment"}
    assert [c["action"] for c in schema["column_decisions"]].count("dropped") == 4
    segment = next(c for c in schema["source_columns"] if c["name"] == "segment")
    assert segment["categories"] == ["a", "b"]


def test_datetimes_become_year_month_weekday_and_days_since_the_first(tmp_path):
    rng = np.random.default_rng(8)
    n = 200
    when = pd.Timestamp("2021-03-01 08:00:00") + pd.to_timedelta(rng.integers(0, 400 * 24, n), unit="h")
    frame = pd.DataFrame({"seen": when.strftime("%Y-%m-%d %H:%M:%S"), "x": rng.normal(size=n)})
    frame.loc[:4, "seen"] = None
    frame["y"] = rng.normal(size=n)
    frame.to_csv(tmp_path / "raw.csv", index=False)
    schema = preprocessed(tmp_path / "raw.csv", "y", tmp_path / "out")
    seen = next(c for c in schema["source_columns"] if c["name"] == "seen")
    assert seen["date_format"] == "%Y-%m-%d %H:%M:%S" and seen["kind"] == "date"
    origin = pd.Timestamp(seen["origin"])
    rows = preprocess.transform_with_schema(schema, pd.DataFrame({"seen": ["2022-02-26 12:00:00", None, "garbage"],
                                                                  "x": [0.0, 0.0, 0.0]}))
    first = rows[0, :4].tolist()
    assert first[:3] == [2022, 2, 5]  # a Saturday
    assert first[3] == pytest.approx((pd.Timestamp("2022-02-26 12:00:00") - origin) / pd.Timedelta(days=1))
    assert rows[1, :4].tolist() == rows[2, :4].tolist() == seen["imputation"]["values"]  # missing or unreadable


def test_day_first_dates_are_read_day_first(tmp_path):
    rng = np.random.default_rng(9)
    n = 120
    when = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    frame = pd.DataFrame({"d": when.strftime("%d/%m/%Y"), "x": rng.normal(size=n), "y": rng.normal(size=n)})
    frame.to_csv(tmp_path / "raw.csv", index=False)
    schema = preprocessed(tmp_path / "raw.csv", "y", tmp_path / "out")
    assert next(c for c in schema["source_columns"] if c["name"] == "d")["date_format"] == "%d/%m/%Y"


def test_the_evaluation_reports_the_naive_baseline_and_the_use_case(runs):
    evaluation = runs["iris"]["evaluation"]
    assert evaluation["target_column"] == "target" and evaluation["labels"] == ["0", "1", "2"]
    baseline = evaluation["baseline"]
    assert baseline["strategy"] == "the train class prior for every row"
    # the majority class of 23 stratified test rows: f1_weighted of always answering one class
    assert baseline["metrics"]["accuracy"] == pytest.approx(8 / 23, abs=0.05)
    diabetes = runs["diabetes"]["evaluation"]["baseline"]
    test = split(runs["diabetes"]["splits"], "test")
    train_mean = runs["diabetes"]["schema"]["baseline_prediction"]["mean"]
    assert diabetes["metrics"]["rmse"] == pytest.approx(np.sqrt(np.mean((test[:, 0] - train_mean) ** 2)))
    assert runs["breast_cancer"]["evaluation"]["baseline"]["metrics"]["auc"] == pytest.approx(0.5)


def test_a_champion_of_another_table_is_refused_not_compared(runs):
    with pytest.raises(gate.ChampionMismatch, match="This model predicts 'churn' \\(binary\\), but the deployed "
                                                    "champion .* predicts 'diagnosis' \\(binary\\)"):
        gate_auto(runs["churn"]["evaluation"], champion=runs["breast_cancer"]["evaluation"])
    with pytest.raises(gate.ChampionMismatch, match="they differ in target column and problem type"):
        gate_auto(runs["iris"]["evaluation"], champion=runs["diabetes"]["evaluation"])


def test_two_tables_with_the_same_target_name_and_type_are_still_two_use_cases(runs):
    # iris and wine both predict a multiclass 'target'; their input columns tell them apart
    assert runs["wine"]["evaluation"]["input_columns"][0] == "alcohol"
    with pytest.raises(gate.ChampionMismatch, match="they differ in input columns"):
        gate_auto(runs["wine"]["evaluation"], champion=runs["iris"]["evaluation"])
    # a retrain of the same table is compared with its champion as before
    assert gate_auto(runs["iris"]["evaluation"], champion=runs["iris"]["evaluation"])["passed"] is True


def featurizer_of(run: dict, folder: Path):
    """The featurizer model.tar.gz preprocess wrote, loaded by the scikit-learn twin as an endpoint would."""
    import tarfile

    from containers.sklearn.transformer import load_predictor
    from processing_scripts.serving.package import CONTAINER_ENVIRONMENT

    with tarfile.open(run["splits"] / "featurizer" / "model.tar.gz") as tar:
        tar.extractall(folder, filter="data")
    return load_predictor(folder, environment=CONTAINER_ENVIRONMENT["featurizer"])


def featurized(featurizer, body: bytes) -> np.ndarray:
    response = featurizer.invoke(body, "text/csv", "text/csv")
    assert response.status == 200, response.body
    return np.loadtxt(response.body.decode().splitlines(), delimiter=",", ndmin=2)


@pytest.mark.parametrize("name", list(TABLES))
def test_the_served_featurizer_on_the_raw_test_split_gives_the_test_split_exactly(runs, name, tmp_path):
    """batch.csv (the test split's raw rows, ID and date columns and messy spellings as uploaded)
    through the packaged featurizer: in one request (the pandas path) and one row per request (the
    no-pandas fast path), exactly preprocess's encoded test split."""
    run = runs[name]
    featurizer = featurizer_of(run, tmp_path)
    expected = split(run["splits"], "test")[:, 1:]
    lines = (run["splits"] / "batch" / "batch.csv").read_bytes().splitlines()
    assert len(lines) == len(expected)
    np.testing.assert_array_equal(featurized(featurizer, b"\n".join(lines)), expected)
    one_by_one = np.vstack([featurized(featurizer, line) for line in lines])
    np.testing.assert_array_equal(one_by_one, expected)


def test_one_row_requests_key_messy_categories_as_training_did(tmp_path):
    """Without a date column every one-row request takes the no-pandas path; 'pro ' and 'PRO' must
    land where training put 'Pro'."""
    frame = user_tables.churn_frame(rows=400).drop(columns=["signup_date"])
    (tmp_path / "in").mkdir()
    frame.to_csv(tmp_path / "in" / "churn.csv", index=False)
    schema = preprocessed(tmp_path / "in" / "churn.csv", "churn", tmp_path / "splits")
    assert all(c["encoding"] != "date_parts" for c in schema["source_columns"])
    run = {"splits": tmp_path / "splits"}
    featurizer = featurizer_of(run, tmp_path / "featurizer")
    lines = (tmp_path / "splits" / "batch" / "batch.csv").read_bytes().splitlines()
    assert any(b"pro ," in line or b"PRO," in line for line in lines)
    one_by_one = np.vstack([featurized(featurizer, line) for line in lines])
    np.testing.assert_array_equal(one_by_one, split(tmp_path / "splits", "test")[:, 1:])

"""The Random Forest candidate served by the scikit-learn twin, alone and between the featurizer and the label
decoder: its answers are the in-process estimator's predict/predict_proba, on real tables."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import user_tables
from pipeline_helpers import SKLEARN_IMAGE, csv_lines

from containers.pipeline import ContainerSpec, load_model
from containers.sklearn.transformer import load_predictor
from processing_scripts import preprocess
from processing_scripts.serving.label_decoder import LabelDecoder
from processing_scripts.serving.package import CONTAINER_ENVIRONMENT, class_labels
from training_scripts.random_forest import contract, train

TABLES = ("iris", "breast_cancer", "diabetes", "churn")  # multiclass, binary, regression, a messy binary export


class Trained:
    def __init__(self, folder: Path, table: str):
        spec = user_tables.TABLES[table]
        source = spec.write(folder)
        self.out = folder / "out"
        assert preprocess.main(["--input-dir", str(source), "--output-dir", str(self.out),
                                "--target-column", spec.target]) == 0
        self.schema = json.loads((self.out / "schema" / "schema.json").read_text())
        self.model_dir = folder / "model"
        # schema channel, problem_type auto: the forest learns the problem type preprocess decided
        assert train.main(["--n_estimators", "15", "--max_depth", "8", "--n_jobs", "2",  # saved with n_jobs=1
                           "--model-dir", str(self.model_dir), "--train", str(self.out / "train"),
                           "--validation", str(self.out / "validation"), "--schema", str(self.out / "schema"),
                           "--output-dir", str(folder / "output")]) == 0
        self.estimator = joblib.load(self.model_dir / contract.MODEL_FILE)
        test = np.loadtxt(self.out / "test" / "test.csv", delimiter=",", ndmin=2)
        self.features = test[:, 1:]
        self.raw = preprocess.read_csv_file(source, source.name).drop(columns=[spec.target])
        self.folder = folder

    def expected_scores(self, features: np.ndarray) -> list:
        """In-process: predict (regression), predict_proba's positive column (binary), every column (multiclass)."""
        kind = self.schema["problem_type"]
        if kind == "regression":
            return self.estimator.predict(features).tolist()
        proba = self.estimator.predict_proba(features)
        assert self.estimator.classes_.tolist() == list(range(self.schema["num_classes"]))
        return proba[:, 1].tolist() if kind == "binary" else proba.tolist()

    def pipeline_containers(self) -> list[ContainerSpec]:
        def extract(name: str) -> Path:
            with tarfile.open(self.out / name / "model.tar.gz") as tar:
                tar.extractall(self.folder / name, filter="data")
            return self.folder / name

        return [ContainerSpec("featurizer", SKLEARN_IMAGE, extract("featurizer"), CONTAINER_ENVIRONMENT["featurizer"]),
                ContainerSpec("model", SKLEARN_IMAGE, self.model_dir, contract.SERVING_ENVIRONMENT),
                ContainerSpec("decoder", SKLEARN_IMAGE, extract("decoder"), CONTAINER_ENVIRONMENT["decoder"])]


@pytest.fixture(scope="module", params=TABLES)
def trained(request, tmp_path_factory):
    return Trained(tmp_path_factory.mktemp(request.param), request.param)


def test_the_forest_alone_answers_predict_and_predict_proba(trained):
    predictor = load_predictor(trained.model_dir, environment=contract.SERVING_ENVIRONMENT)
    body = "".join(",".join(map(repr, row)) + "\n" for row in trained.features.tolist()).encode()  # the featurizer's CSV
    expected = trained.expected_scores(trained.features)

    answer = predictor.invoke(body, "text/csv", None)  # no Accept: the model's default, JSON
    assert answer.status == 200 and answer.content_type == "application/json"
    assert json.loads(answer.body) == {"predictions": [{"score": score} for score in expected]}

    answer = predictor.invoke(body, "text/csv", "text/csv")
    assert answer.status == 200
    assert answer.body.decode() == "".join(f"{score!r}\n" for score in expected)

    instances = json.dumps({"instances": trained.features[:5].tolist()}).encode()
    answer = predictor.invoke(instances, "application/json", "application/json")
    assert json.loads(answer.body)["predictions"] == [{"score": score} for score in expected[:5]]


def test_between_featurizer_and_decoder_raw_rows_get_the_in_process_labels(trained):
    pipeline = load_model(trained.pipeline_containers())
    rows = trained.raw.sample(n=min(120, len(trained.raw)), random_state=1)
    features = preprocess.transform_with_schema(trained.schema, rows)
    decoder = LabelDecoder(trained.schema["problem_type"], class_labels(trained.schema))
    for accept in ("text/csv", "application/json"):
        answer = pipeline.invoke("\n".join(csv_lines(rows)).encode(), "text/csv", accept)
        assert answer.status == 200, answer.body
        expected = decoder.encode(decoder.decode(trained.expected_scores(features)), accept)[0]
        assert answer.body.decode() == expected


def test_requests_the_forest_cannot_answer_are_refused_with_the_status_and_reason(tmp_path_factory):
    trained = Trained(tmp_path_factory.mktemp("iris-errors"), "iris")
    predictor = load_predictor(trained.model_dir, environment=contract.SERVING_ENVIRONMENT)
    short = predictor.invoke(b"1.0,2.0\n", "text/csv", "application/json")
    assert short.status == 400 and b"Each row needs 4 features, got 2" in short.body
    ragged = predictor.invoke(b"1,2,3,4\n1,2,3\n", "text/csv", "application/json")
    assert ragged.status == 400 and b"Row 2 has 3 features, row 1 has 4" in ragged.body
    word = predictor.invoke(b"1,2,x,4\n", "text/csv", "application/json")
    assert word.status == 400 and b"Row 1, feature 3: 'x' is not a number" in word.body
    assert predictor.invoke(b"1,2,3,4", "application/x-parquet", "application/json").status == 415
    assert predictor.invoke(b"1,2,3,4", "text/csv", "text/html").status == 406
    # the training script's module serves too (sagemaker_program as SAGEMAKER_PROGRAM, as the SDK's create_model)
    same = load_predictor(trained.model_dir, environment={**contract.SERVING_ENVIRONMENT,
                                                          "SAGEMAKER_PROGRAM": contract.PROGRAM})
    body = b"5.1,3.5,1.4,0.2\n"
    assert same.invoke(body, "text/csv", "text/csv").body == predictor.invoke(body, "text/csv", "text/csv").body

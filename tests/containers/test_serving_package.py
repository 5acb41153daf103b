"""preprocess packs the featurizer and the label decoder as model.tar.gz for the scikit-learn image."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile

from pipeline_helpers import DATA, build

from processing_scripts import preprocess
from processing_scripts.serving.package import CONTAINER_ENVIRONMENT, class_labels


def members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_archives_hold_the_schema_and_code_and_are_reproducible(tmp_path):
    model = build("bank-marketing.csv", tmp_path / "a", rounds=1)
    out = model.folder / "out"
    featurizer = members(out / "featurizer" / "model.tar.gz")
    assert sorted(featurizer) == ["code/errors.py", "code/feature_rules.py", "code/featurizer.py",
                                  "code/monitor_baseline.py", "code/preprocess.py", "code/problem_rules.py",
                                  "schema.json"]
    # the code imports from the archive alone, as the container (no project tree on its path) runs it
    code = tmp_path / "code"
    with tarfile.open(out / "featurizer" / "model.tar.gz") as tar:
        tar.extractall(code, filter="data")
    found = subprocess.run([sys.executable, "-E", "-s", "-c", "import featurizer; print(featurizer.preprocess.__file__)"],
                           check=False, cwd=code / "code", capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(code / "code" / "preprocess.py")
    assert json.loads(featurizer["schema.json"]) == model.schema
    assert model.schema["input_columns"] == list(model.feature_rows().columns)
    assert featurizer["code/preprocess.py"] == (DATA.parent / "processing_scripts" / "preprocess.py").read_bytes()
    decoder = members(out / "decoder" / "model.tar.gz")
    assert sorted(decoder) == ["code/errors.py", "code/label_decoder.py", "labels.json"]
    assert json.loads(decoder["labels.json"]) == {"problem_type": "binary", "labels": ["no", "yes"]}
    again = tmp_path / "again"
    assert preprocess.main(["--input-dir", str(DATA / "bank-marketing.csv"), "--output-dir", str(again),
                            "--target-column", "deposit"]) == 0
    for name in ("featurizer", "decoder"):
        assert (again / name / "model.tar.gz").read_bytes() == (out / name / "model.tar.gz").read_bytes()


def test_class_labels_in_the_models_index_order():
    assert class_labels({"problem_type": "regression"}) is None
    assert class_labels({"problem_type": "multiclass", "label_mapping": {"b": 1, "a": 0, "c": 2}}) == ["a", "b", "c"]
    # the field preprocess writes: the user's spelling of each class, in index order
    assert class_labels({"problem_type": "binary", "labels": ["No", "Yes"], "label_mapping": {"0": "No", "1": "Yes"}}) == ["No", "Yes"]


def test_the_entry_points_are_named_in_the_container_environment():
    assert CONTAINER_ENVIRONMENT["featurizer"]["SAGEMAKER_PROGRAM"] == "featurizer.py"
    assert CONTAINER_ENVIRONMENT["decoder"]["SAGEMAKER_PROGRAM"] == "label_decoder.py"
    assert CONTAINER_ENVIRONMENT["model"]["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"] == "application/json"

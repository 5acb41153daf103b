"""The scikit-learn image's training side (containers/sklearn/train.py) against the training toolkit's contract:
hyperparameter decoding, the SM_* environment, CLI args, channels, the code folder, failure file and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from containers.sklearn.training_env import decode_hyperparameters, to_cmd_args, to_env_vars

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# A user script that records what it was given (argv, cwd, environment, sys.path) in the model folder.
DUMP_SCRIPT = """
import json, os, sys
from pathlib import Path
import helper  # a sibling module of the submit directory
record = {"argv": sys.argv[1:], "cwd": os.getcwd(), "env": {k: v for k, v in os.environ.items()
          if k.startswith(("SM_", "SAGEMAKER_", "CURRENT_HOST", "PYTHONPATH"))}, "helper": helper.VALUE,
          "channel_files": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"]))}
Path(os.environ["SM_MODEL_DIR"], "record.json").write_text(json.dumps(record))
print("validation:accuracy=0.75")
"""


def ml_root(tmp_path: Path, hyperparameters: dict[str, str], files: dict[str, str], *, channels=("train",),
            as_tar: bool = False) -> Path:
    """A job folder laid out as SageMaker lays out /opt/ml, the code in a local folder or tar.gz."""
    root = tmp_path / "ml"
    config = root / "input" / "config"
    config.mkdir(parents=True)
    source = tmp_path / "source"
    source.mkdir()
    for name, text in files.items():
        (source / name).write_text(text)
    submit = str(source)
    if as_tar:
        submit = str(tmp_path / "sourcedir.tar.gz")
        with tarfile.open(submit, "w:gz") as tar:
            for name in files:
                tar.add(source / name, arcname=name)
    hyperparameters = {"sagemaker_submit_directory": json.dumps(submit), **hyperparameters}
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps(
        {name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None",
                "ContentType": "text/csv"} for name in channels}))
    (config / "resourceconfig.json").write_text(json.dumps({
        "current_host": "algo-1", "current_instance_type": "ml.m5.large", "current_group_name": "homogeneousCluster",
        "hosts": ["algo-1"], "network_interface_name": "eth0",
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": "ml.m5.large",
                             "hosts": ["algo-1"]}]}))
    for name in channels:
        (root / "input" / "data" / name).mkdir(parents=True)
        (root / "input" / "data" / name / f"{name}.csv").write_text("1,2,3\n")
    (root / "model").mkdir()
    return root


def run_twin(root: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SAGEMAKER_"))}
    environ.update({"TRAINING_JOB_NAME": "job-1", "PYTHONPATH": str(PROJECT_ROOT), **(env or {})})
    return subprocess.run([sys.executable, "-m", "containers.sklearn.train", "--ml-root", str(root), "train"],
                          cwd=PROJECT_ROOT, env=environ, capture_output=True, text=True, timeout=120, check=False)


HYPERPARAMETERS = {
    # as the SageMaker Python SDK sends them: every value json.dumps'd
    "sagemaker_program": json.dumps("dump.py"),
    "sagemaker_container_log_level": "20",
    "sagemaker_region": json.dumps("eu-west-1"),
    "sagemaker_job_name": json.dumps("rf-2026"),
    "sagemaker_mpi_enabled": "false",
    "_tuning_objective_metric": "validation:accuracy",
    "n_estimators": "50",
    "ratio": "0.25",
    "bootstrap": "true",
    "criterion": json.dumps("gini"),
    "plain": "sqrt",  # not JSON: stays the string
    "nested": json.dumps({"b": 2, "a": [1, 2]}),
    "none": "null",
}


def test_the_script_gets_the_toolkits_arguments_environment_and_folder(tmp_path):
    root = ml_root(tmp_path, HYPERPARAMETERS, {"dump.py": DUMP_SCRIPT, "helper.py": "VALUE = 7\n"},
                   channels=("train", "validation"), as_tar=True)
    done = run_twin(root)
    assert done.returncode == 0, done.stderr
    assert (root / "output" / "success").is_file() and not (root / "output" / "failure").exists()
    record = json.loads((root / "model" / "record.json").read_text())
    code = root / "code"
    assert record["cwd"] == str(code) and (code / "dump.py").is_file()  # the tar.gz unpacked into <root>/code
    assert record["helper"] == 7

    # sagemaker_* and _tuning_objective_metric are the container's; the rest, sorted, as --name str(value)
    assert record["argv"] == ["--bootstrap", "True", "--criterion", "gini", "--n_estimators", "50",
                              "--nested", "a=[1, 2],b=2", "--none", "", "--plain", "sqrt", "--ratio", "0.25"]
    env = record["env"]
    assert json.loads(env["SM_HPS"]) == {"bootstrap": True, "criterion": "gini", "n_estimators": 50,
                                         "nested": {"a": [1, 2], "b": 2}, "none": None, "plain": "sqrt", "ratio": 0.25}
    assert env["SM_HP_N_ESTIMATORS"] == "50" and env["SM_HP_BOOTSTRAP"] == "true"
    assert env["SM_HP_CRITERION"] == "gini" and env["SM_HP_PLAIN"] == "sqrt" and env["SM_HP_NONE"] == ""
    assert env["SM_HP_NESTED"] == '{"a":[1,2],"b":2}'
    assert not any(k.startswith("SM_HP_SAGEMAKER") or k == "SM_HP__TUNING_OBJECTIVE_METRIC" for k in env)
    assert json.loads(env["SM_USER_ARGS"]) == record["argv"]
    assert json.loads(env["SM_FRAMEWORK_PARAMS"]) == {"sagemaker_mpi_enabled": False}

    assert env["SM_MODEL_DIR"] == str(root / "model")
    assert env["SM_CHANNELS"] == '["train","validation"]'
    assert env["SM_CHANNEL_TRAIN"] == str(root / "input" / "data" / "train")
    assert env["SM_CHANNEL_VALIDATION"] == str(root / "input" / "data" / "validation")
    assert record["channel_files"] == ["train.csv"]
    assert env["SM_HOSTS"] == '["algo-1"]' and env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "ml.m5.large"
    assert int(env["SM_NUM_CPUS"]) == os.cpu_count() and env["SM_NUM_GPUS"] == "0"
    assert env["SM_OUTPUT_DATA_DIR"] == str(root / "output" / "data")
    assert env["SM_OUTPUT_DIR"] == str(root / "output") and env["SM_INPUT_DIR"] == str(root / "input")
    assert env["SM_INPUT_CONFIG_DIR"] == str(root / "input" / "config")
    assert env["SM_USER_ENTRY_POINT"] == "dump.py" and env["SM_MODULE_NAME"] == "dump"
    assert env["SM_MODULE_DIR"] == str(tmp_path / "sourcedir.tar.gz")
    assert env["SM_LOG_LEVEL"] == "20"
    assert env["SM_FRAMEWORK_MODULE"] == "sagemaker_sklearn_container.training:main"
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["hyperparameters"]["n_estimators"] == 50 and training_env["job_name"] == "job-1"
    assert training_env["channel_input_dirs"]["train"] == env["SM_CHANNEL_TRAIN"]
    assert training_env["is_master"] is True and training_env["master_hostname"] == "algo-1"
    # set by the toolkit in its own environment, inherited by the script
    assert env["SAGEMAKER_JOB_NAME"] == "rf-2026" and env["SAGEMAKER_REGION"] == "eu-west-1"
    assert env["CURRENT_HOST"] == "algo-1"
    assert env["PYTHONPATH"] == str(code)  # the code folder, not the project's
    assert "validation:accuracy=0.75" in done.stdout


def test_a_script_that_raises_fails_the_job_with_the_failure_file_and_exit_code_1(tmp_path):
    script = "import sys\nprint('training...')\nraise ValueError('max_depth must be positive')\n"
    root = ml_root(tmp_path, {"sagemaker_program": json.dumps("boom.py")}, {"boom.py": script})
    done = run_twin(root)
    assert done.returncode == 1
    failure = (root / "output" / "failure").read_text()
    assert failure.startswith("ExecuteUserScriptError:\nExitCode 1\nErrorMessage \"")
    assert "ValueError: max_depth must be positive" in failure
    assert f'Command "{sys.executable} boom.py"' in failure
    assert "ValueError: max_depth must be positive" in done.stderr  # the script's stderr is the job's log too
    assert not (root / "output" / "success").exists()


def test_the_scripts_exit_code_is_in_the_message_and_its_own_failure_file_wins(tmp_path):
    script = ("import os, sys\nfrom pathlib import Path\n"
              "Path(os.environ['SM_OUTPUT_DIR'], 'failure').write_text('ChannelError: the train channel is empty')\n"
              "sys.exit(3)\n")
    root = ml_root(tmp_path, {"sagemaker_program": json.dumps("quits.py")}, {"quits.py": script})
    done = run_twin(root)
    assert done.returncode == 1  # the toolkit's trainer exits 1 on any ClientError
    assert (root / "output" / "failure").read_text() == "ChannelError: the train channel is empty"
    assert "ExitCode 3" in done.stdout + done.stderr


def test_requirements_txt_is_honoured_only_when_already_installed(tmp_path):
    ok = ml_root(tmp_path / "ok", {"sagemaker_program": json.dumps("s.py")},
                 {"s.py": "print('ran')\n", "requirements.txt": "numpy>=1.20\nscikit-learn  # pinned by the image\n"})
    assert run_twin(ok).returncode == 0
    missing = ml_root(tmp_path / "missing", {"sagemaker_program": json.dumps("s.py")},
                      {"s.py": "print('ran')\n", "requirements.txt": "numpy<1.0\nno-such-package-xyz==1.0\n"})
    done = run_twin(missing)
    assert done.returncode == 1 and "ran" not in done.stdout
    failure = (missing / "output" / "failure").read_text()
    assert failure.startswith("InstallRequirementsError:")
    assert "no-such-package-xyz (not installed)" in failure and "numpy<1.0 (installed: " in failure


def test_a_missing_entry_point_or_submit_directory_is_named(tmp_path):
    root = ml_root(tmp_path / "a", {"sagemaker_program": json.dumps("trian.py")}, {"train.py": "print(1)\n"})
    assert run_twin(root).returncode == 1
    assert "sagemaker_program 'trian.py' is not in the submit directory (found ['train.py'])" in (
        root / "output" / "failure").read_text()
    root = ml_root(tmp_path / "b", {"sagemaker_program": json.dumps("train.py"),
                                    "sagemaker_submit_directory": json.dumps(str(tmp_path / "nowhere"))}, {})
    assert run_twin(root).returncode == 1
    assert "is neither an s3:// URI nor a local folder" in (root / "output" / "failure").read_text()


def test_decoding_and_cli_args_follow_the_toolkits_mapping():
    decoded = decode_hyperparameters({"a": "1", "b": "1.5", "c": "true", "d": '"x"', "e": "x", "f": '{"k": [1]}',
                                      "g": "[1, 2]", "h": "null", "i": 3})
    assert decoded == {"a": 1, "b": 1.5, "c": True, "d": "x", "e": "x", "f": {"k": [1]}, "g": [1, 2], "h": None, "i": 3}
    assert to_cmd_args({"lr": 0.1, "x": True, "deep": {"b": 1, "a": "y"}}) == [
        "--deep", "a=y,b=1", "--lr", "0.1", "-x", "True"]
    assert to_env_vars({"hps": {"b": 1, "a": None}, "name": "v", "none": None, "flag": False}) == {
        "SM_HPS": '{"a":null,"b":1}', "SM_NAME": "v", "SM_NONE": "", "SM_FLAG": "false"}


@pytest.mark.parametrize("program", ["run.sh"])
def test_a_shell_entry_point_runs_with_sh(tmp_path, program):
    root = ml_root(tmp_path, {"sagemaker_program": json.dumps(program), "epochs": "2"},
                   {program: 'echo "args: $@ model: $SM_MODEL_DIR"\n'})
    done = run_twin(root)
    assert done.returncode == 0, done.stderr
    assert f"args: --epochs 2 model: {root / 'model'}" in done.stdout

"""`train` of the scikit-learn framework image: run the user's script-mode entry point, as the toolkit does.

    python -m containers.sklearn.train [--ml-root DIR]     (or: python containers/sklearn/train.py)

The ML root (``--ml-root``, else env SM_ML_ROOT, else SAGEMAKER_BASE_DIR, else /opt/ml) is laid out as
SageMaker lays out /opt/ml. Steps, after sagemaker-training-toolkit (trainer.py, entry_point.py,
files.py, modules.py, process.py) with the image's framework module (sagemaker_sklearn_container
training.main):

1. Read the environment (training_env.py): hyperparameters.json JSON-decoded, ``sagemaker_*`` taken
   out, SM_* variables and the CLI args built.
2. Put the submit directory (``sagemaker_submit_directory``: an s3:// sourcedir.tar.gz, a local
   folder or a local tar.gz) in ``<root>/code`` unless that folder already holds files. S3 is read
   with boto3, which honours AWS_ENDPOINT_URL_S3 (the emulator's S3 offline) and the toolkit's
   S3_ENDPOINT_URL.
3. A ``requirements.txt`` there is honoured when every requirement is already installed; this twin
   has no network, so a missing or conflicting one fails with InstallRequirementsError naming it.
4. Run the entry point in ``<root>/code`` with this interpreter: ``python <program> <args>`` (a
   folder with setup.py: ``python -m <module>``; a ``.sh`` or other file: ``/bin/sh -c``), with the
   SM_* variables, SAGEMAKER_JOB_NAME, CURRENT_HOST, SAGEMAKER_REGION and PYTHONPATH=<code dir>.
   Its stdout and stderr are the job's log (MetricDefinitions read them).
5. Success: ``<root>/output/success``, exit 0. Failure: ``<root>/output/failure`` (unless the
   script wrote one first: the toolkit never overwrites it) holds the toolkit's message, e.g.
   ``ExecuteUserScriptError:\\nExitCode 1\\nErrorMessage "ValueError: ..."\\nCommand "..."``, and the exit code
   is 1 whatever the script's (the script's is in the message), as the toolkit's trainer exits.

Differences, on purpose: the toolkit (capture_error=False) leaves ErrorMessage empty; here it holds
the last lines of the script's stderr, so FailureReason says what failed. No pip (no network): a
setup.py package runs from the folder without ``pip install .``. No MPI/distributed runners (one
host plays the cluster).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import traceback
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):  # run as a path: make `containers` importable from the project root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from packaging.requirements import InvalidRequirement, Requirement

from containers.sklearn.training_env import TrainingEnvironment

log = logging.getLogger("sagemaker-training-toolkit")

DEFAULT_ML_ROOT = "/opt/ml"
SUCCESS, FAILURE = 0, 1
STDERR_TAIL_LINES = 20


class ClientError(Exception):
    """The toolkit's errors.ClientError: the user's code or configuration failed (exit 1)."""


class ScriptProcessError(ClientError):
    """errors._CalledProcessError: a process of the job returned non-zero; str() is the toolkit's message."""

    def __init__(self, cmd: list[str], return_code: int, output: str | None = None, info: str | None = None):
        super().__init__()
        self.cmd, self.return_code, self.output, self.info = cmd, return_code, output, info

    def __str__(self) -> str:
        lines = [f"{type(self).__name__}:", f"ExitCode {self.return_code}", f'ErrorMessage "{self.output or ""}"']
        if self.info:
            lines.append(f'ExtraInfo "{self.info}"')
        lines.append(f'Command "{" ".join(self.cmd)}"')
        return "\n".join(lines).strip()


class ExecuteUserScriptError(ScriptProcessError):
    """The entry point exited non-zero."""


class InstallRequirementsError(ScriptProcessError):
    """requirements.txt asks for packages that are not installed (and this twin installs none)."""


class ImportModuleError(ClientError):
    """The entry point or submit directory cannot be found or unpacked."""


# -- the submit directory ----------------------------------------------------------------------------
def _s3_download(uri: str, destination: Path, region: str) -> None:
    import boto3  # only a job with an S3 submit directory pays for the import
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError as BotoClientError

    bucket, _, key = uri[len("s3://"):].partition("/")
    client = boto3.client("s3", region_name=region or None, endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None)
    try:
        client.download_file(bucket, key, str(destination))
    except (BotoCoreError, BotoClientError) as err:
        raise ImportModuleError(f"Could not download sagemaker_submit_directory {uri}: {err}. Check that the object "
                                "exists and the job's role may read it.") from None


def _extract(archive: Path, destination: Path, shown: str) -> None:
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            tar.extractall(destination, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise ImportModuleError(f"sagemaker_submit_directory {shown} is not a readable tar.gz ({err}); package the "
                                "code as the SageMaker Python SDK does (sourcedir.tar.gz, files at the root).") from None


def download_and_extract(uri: str, code_dir: Path, region: str) -> None:
    """files.download_and_extract: the submit directory's files in ``code_dir`` (kept if already there)."""
    code_dir.mkdir(parents=True, exist_ok=True)
    if any(code_dir.iterdir()):
        log.info("Provided path: %s is not empty, abandoning unzipping sourcedir.tar.gz", code_dir)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if uri.startswith("s3://"):
            archive = Path(tmp) / "tar_file"
            _s3_download(uri, archive, region)
            _extract(archive, code_dir, uri)
        elif Path(uri).is_dir():
            if Path(uri).resolve() != code_dir.resolve():
                shutil.copytree(uri, code_dir, dirs_exist_ok=True)
        elif Path(uri).is_file() and tarfile.is_tarfile(uri):
            _extract(Path(uri), code_dir, uri)
        elif Path(uri).is_file():
            shutil.copy2(uri, code_dir)
        else:
            raise ImportModuleError(f"sagemaker_submit_directory {uri!r} is neither an s3:// URI nor a local folder or "
                                    "file; set it to the S3 URL of the uploaded sourcedir.tar.gz.")


def check_requirements(code_dir: Path, python: str) -> None:
    """modules.install_requirements without the network: every requirement must already be satisfied."""
    requirements = code_dir / "requirements.txt"
    if not requirements.is_file():
        return
    problems = []
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            if line:
                problems.append(f"{line!r} (pip options are not supported offline)")
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as err:
            problems.append(f"{line!r} ({err})")
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{requirement.name} (not installed)")
            continue
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            problems.append(f"{line} (installed: {installed})")
    if problems:
        raise InstallRequirementsError(
            [python, "-m", "pip", "install", "-r", "requirements.txt"], 1,
            "requirements.txt asks for packages that are not installed and this offline container installs none: "
            + "; ".join(problems) + ". Install them into the project's environment (pinned in requirements.txt) "
            "or remove them from the submit directory's requirements.txt.")
    log.info("requirements.txt: every requirement is already installed")


# -- running the entry point ------------------------------------------------------------------------
def entry_point_command(code_dir: Path, program: str, args: list[str], python: str) -> list[str]:
    """process.ProcessRunner._create_command."""
    if not (code_dir / program).exists() and not program.endswith(".sh") and not (code_dir / "setup.py").exists():
        found = sorted(p.name for p in code_dir.iterdir())
        raise ImportModuleError(f"sagemaker_program {program!r} is not in the submit directory (found {found}); set "
                                "sagemaker_program to the entry point's file name inside sourcedir.tar.gz.")
    if not program.endswith(".sh") and (code_dir / "setup.py").exists():
        return [python, "-m", program.removesuffix(".py"), *args]
    if program.endswith(".py"):
        return [python, program, *args]
    (code_dir / program).chmod(0o777)  # entry_point.install: a command is made executable (511)
    return ["/bin/sh", "-c", f"./{program} " + " ".join(shlex.quote(a) for a in args)]


def _tee(stream, sink, tail: collections.deque) -> None:
    """Copy the script's stderr to ours line by line, keeping the last lines for the failure message."""
    for line in iter(stream.readline, b""):
        sink.write(line)
        sink.flush()
        tail.append(line.decode("utf-8", "replace").rstrip("\n"))
    stream.close()


def run_entry_point(command: list[str], code_dir: Path, env: dict[str, str]) -> None:
    """process.check_error: run, stream the output, ExecuteUserScriptError on a non-zero exit."""
    tail: collections.deque = collections.deque(maxlen=STDERR_TAIL_LINES)
    process = subprocess.Popen(command, cwd=code_dir, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    reader = threading.Thread(target=_tee, args=(process.stderr, sys.stderr.buffer, tail), daemon=True)
    reader.start()
    try:
        code = process.wait()
    except BaseException:  # SIGTERM from StopTrainingJob: the script stops with us
        process.terminate()
        raise
    finally:
        reader.join(timeout=5)
    if code:
        info = "OutOfMemory: Process killed by SIGKILL (signal 9)" if code in (137, -9) else None
        message = "\n".join(line for line in dict.fromkeys(tail) if line.strip())
        raise ExecuteUserScriptError(command, code, message, info)


def _write_once(path: Path, text: str) -> None:
    """files.write_failure_file: the first failure written (the script's own, if it wrote one) stays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        log.info("Failure file exists. Skipping creation....")
        return
    path.write_text(text)


def _log_invocation(environment: TrainingEnvironment, command: list[str], env_vars: dict[str, str]) -> None:
    log.info("Invoking user script\n\nTraining Env:\n\n%s\n\nEnvironment variables:\n\n%s\n\n"
             "Invoking script with the following command:\n\n%s\n",
             json.dumps(environment.training_env(), indent=4, sort_keys=True, default=str),
             "\n".join(f"{k}={v}" for k, v in env_vars.items()), " ".join(command))


def train(root: Path, environ: dict[str, str] | None = None) -> None:
    """One training run (trainer.train with the image's framework module); raises on failure."""
    environment = TrainingEnvironment.from_root(root, environ)
    logging.basicConfig(format="%(asctime)s %(name)-12s %(levelname)-8s %(message)s", level=environment.log_level)
    program = environment.user_entry_point
    if not program:
        raise ImportModuleError("No entry point: set the sagemaker_program hyperparameter (or SAGEMAKER_PROGRAM) to the "
                                "script's file name, as the SageMaker Python SDK does.")
    code_dir = environment.paths.code_dir
    for folder in (environment.paths.model_dir, environment.paths.output_data_dir):
        folder.mkdir(parents=True, exist_ok=True)  # SageMaker creates them before the container starts
    download_and_extract(environment.module_dir, code_dir, environment.region)
    python = sys.executable
    check_requirements(code_dir, python)
    command = entry_point_command(code_dir, str(program), environment.to_cmd_args(), python)
    env_vars = environment.to_env_vars()
    process_env = {**(environ if environ is not None else os.environ), **environment.process_env_vars(), **env_vars}
    # the script sees its own folder first, as the toolkit's PYTHONPATH puts the code dir first;
    # not the project's folders (the image has none of them)
    process_env["PYTHONPATH"] = str(code_dir)
    _log_invocation(environment, command, env_vars)
    run_entry_point(command, code_dir, process_env)


def ml_root(argument: str | None) -> Path:
    return Path(argument or os.environ.get("SM_ML_ROOT") or os.environ.get("SAGEMAKER_BASE_DIR") or DEFAULT_ML_ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ml-root", default=None)
    parser.add_argument("mode", nargs="?", default="train", choices=["train"],
                        help="SageMaker starts a training image as `<entrypoint> train`")
    args = parser.parse_args(argv)
    root = ml_root(args.ml_root)
    output = root / "output"
    try:
        train(root)
    except ClientError as err:
        message = str(err)
        _write_once(output / "failure", message)
        log.error("Reporting training FAILURE")
        log.error(message)
        return FAILURE
    except Exception as err:  # noqa: BLE001 - the toolkit's "Framework Error": the container itself failed
        message = f"Framework Error: \n{traceback.format_exc()}\n{err}"
        _write_once(output / "failure", message)
        log.error("Reporting training FAILURE")
        log.error(message)
        code = getattr(err, "errno", FAILURE)
        return code if isinstance(code, int) and code > 0 else FAILURE
    log.info("Reporting training SUCCESS")
    output.mkdir(parents=True, exist_ok=True)
    (output / "success").write_text("")
    return SUCCESS


if __name__ == "__main__":
    sys.exit(main())

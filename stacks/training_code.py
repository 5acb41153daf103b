"""Script-mode training code shipped as the SageMaker Python SDK ships it: sourcedir.tar.gz and sagemaker_* hyperparameters.

    code = ScriptModeCode(self, "RandomForestCode", source_dir=PROJECT_ROOT / "training_scripts" / "random_forest",
                          entry_point="train.py")
    code.grant_read(role)
    hyperparameters = {**code.hyperparameters(), **json_encode_hyperparameters({"n_estimators": 200})}

The folder is packed at synth time, without Docker, into a byte-for-byte reproducible tar.gz (entries
sorted, mtimes zero, owner root, modes 0644/0755, no __pycache__ or *.pyc, gzip header without a
time), so the same code gives the same asset hash on every synth. It is published as a CDK file
asset (the bootstrap assets bucket); ``sagemaker_submit_directory`` is its S3 URL.

The SDK's Framework estimators JSON-encode every hyperparameter value (EstimatorBase.
_json_encode_hyperparameters: ``json.dumps(value)``), so a string arrives quoted (``"\\"train.py\\""``)
and a number bare (``"20"``); the training toolkit JSON-decodes them back. The script-mode entries
are those of Framework._script_mode_hyperparam_update: sagemaker_submit_directory, sagemaker_program,
sagemaker_container_log_level (logging.INFO = 20 by default), sagemaker_region and, known only at run
time, sagemaker_job_name (``job_name_hyperparameter`` gives its JSONPath form).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

SOURCEDIR = "sourcedir.tar.gz"
EXCLUDED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")


def _included(folder: Path) -> Iterable[Path]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part in EXCLUDED_DIRS or part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.name.endswith(EXCLUDED_SUFFIXES):
            continue
        if path.is_file() or path.is_dir():
            yield path


def sourcedir_archive(folder: Path) -> bytes:
    """The folder's files at the archive root, as sourcedir.tar.gz bytes that depend on content alone."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"training code folder {folder} does not exist")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _included(folder):
            info = tarfile.TarInfo(path.relative_to(folder).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o755 if path.stat().st_mode & 0o111 else 0o644
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def write_sourcedir(folder: Path, build_dir: Path | None = None) -> Path:
    """sourcedir.tar.gz of ``folder`` written under ``build_dir`` (default: the system temp folder) in a
    folder named by its content hash, so concurrent synths never see each other's half-written file."""
    data = sourcedir_archive(folder)
    digest = hashlib.sha256(data).hexdigest()[:24]
    target = Path(build_dir or Path(tempfile.gettempdir()) / "cdk-sourcedir") / digest / SOURCEDIR
    if not target.is_file() or target.read_bytes() != data:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{SOURCEDIR}.{digest}.tmp")
        staging.write_bytes(data)
        staging.replace(target)
    return target


def json_encode_hyperparameters(hyperparameters: Mapping[str, Any]) -> dict[str, str]:
    """EstimatorBase._json_encode_hyperparameters: every value through json.dumps."""
    return {str(name): json.dumps(value) for name, value in hyperparameters.items()}


def script_mode_hyperparameters(entry_point: str, submit_directory: str, region: str,
                                log_level: int = logging.INFO) -> dict[str, str]:
    """The SDK's script-mode hyperparameters (JSON-encoded), without sagemaker_job_name."""
    return json_encode_hyperparameters({
        "sagemaker_submit_directory": submit_directory,
        "sagemaker_program": entry_point,
        "sagemaker_container_log_level": log_level,
        "sagemaker_region": region,
    })


def job_name_hyperparameter(job_name_path: str) -> dict[str, str]:
    """``sagemaker_job_name`` for a Step Functions task, JSON-encoded at run time from a JSONPath:
    ``sagemaker_job_name.$`` = ``States.Format('"{}"', $.names.train)`` (the job name in quotes)."""
    return {"sagemaker_job_name.$": f"States.Format('\"{{}}\"', {job_name_path})"}


class ScriptModeCode(Construct):
    """A script-mode entry point's folder as sourcedir.tar.gz in the CDK assets bucket.

    ``asset`` (aws_s3_assets.Asset), ``s3_url`` (s3://bucket/key, tokens until deploy),
    ``entry_point``, ``hyperparameters()`` (the SDK's sagemaker_* set), ``grant_read(role)``."""

    def __init__(self, scope: Construct, construct_id: str, *, source_dir: Path, entry_point: str,
                 log_level: int = logging.INFO, build_dir: Path | None = None) -> None:
        super().__init__(scope, construct_id)
        source_dir = Path(source_dir)
        if not (source_dir / entry_point).is_file():
            raise ValueError(f"entry point {entry_point!r} is not a file in {source_dir}; script mode runs "
                             "sagemaker_program from the root of sourcedir.tar.gz")
        self.entry_point = entry_point
        self.log_level = log_level
        self.archive_path = write_sourcedir(source_dir, build_dir)
        self.asset = s3_assets.Asset(self, "SourceDir", path=str(self.archive_path))
        self.s3_url: str = self.asset.s3_object_url

    def hyperparameters(self, region: str | None = None) -> dict[str, str]:
        """sagemaker_submit_directory/program/container_log_level/region, JSON-encoded as the SDK does."""
        return script_mode_hyperparameters(self.entry_point, self.s3_url, region or Stack.of(self).region,
                                           self.log_level)

    def grant_read(self, grantee: iam.IGrantable) -> None:
        self.asset.grant_read(grantee)

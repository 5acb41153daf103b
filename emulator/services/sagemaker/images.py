"""Resolve a container image URI to the local twin that plays it.

AWS-provided images are matched by repository name, whatever the account and region in the URI:

  <acct>.dkr.ecr.<region>.amazonaws.com/sagemaker-xgboost:3.0-5      -> containers/xgboost
  <acct>.dkr.ecr.<region>.amazonaws.com/sagemaker-scikit-learn:<v>   -> processing: the job's own entry
                                                                        point; training: containers/sklearn
                                                                        (train.py); serving: containers/sklearn
  <acct>.dkr.ecr.<region>.amazonaws.com/cdk-hnb659fds-container-assets-<acct>-<region>:<hash>
                                                                     -> the CDK asset's folder

A command the image would run with ``python``/``python3`` runs with this interpreter
(``sys.executable``), so the job sees the project's pinned libraries.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from emulator.services.sagemaker.exceptions import ValidationException

log = logging.getLogger("emulator.services.sagemaker.images")

_IMAGE = re.compile(r"^(?:(?P<registry>[^/]+\.[^/]+)/)?(?P<repository>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>.+))?$")
_PYTHONS = {"python", "python3", "/usr/bin/python3", "/usr/bin/python", "/usr/local/bin/python", "/usr/local/bin/python3"}
XGBOOST_VERSION = "3.0-5"


class UnsupportedImage(ValidationException):
    """The image has no local twin: the message names it and what the emulator does run."""

    def __init__(self, image: str, why: str):
        super().__init__(
            f"Image {image!r} cannot run locally: {why}. The emulator runs sagemaker-xgboost:{XGBOOST_VERSION}, "
            "sagemaker-scikit-learn:<version> and CDK image assets (cdk-*-container-assets-*)."
        )
        self.image = image


@dataclass(frozen=True)
class ImageRef:
    uri: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """The repository's last path segment: 'sagemaker-xgboost'."""
        return self.repository.rsplit("/", 1)[-1]


def parse_image(uri: str) -> ImageRef:
    match = _IMAGE.match(uri.strip())
    if not match:
        raise UnsupportedImage(uri, "it is not an image URI (registry/repository:tag)")
    return ImageRef(uri, match.group("repository"), match.group("tag"), match.group("digest"))


def python_command(command: list[str]) -> list[str]:
    """Swap a leading python/python3 for this interpreter (what the image's python would be)."""
    if command and command[0] in _PYTHONS:
        return [sys.executable, *command[1:]]
    return list(command)


@dataclass(frozen=True)
class Launcher:
    """How to start one image's processes locally."""

    image: str
    kind: str  # "xgboost" | "sklearn" | "asset"
    workdir: Path  # the process's cwd and the first PYTHONPATH entry
    default_command: list[str] = field(default_factory=list)  # the image's ENTRYPOINT (+ CMD)

    def training_command(self) -> list[str]:
        """SageMaker starts a training image as ``<entrypoint> train``; the twins are modules."""
        if self.kind == "xgboost":
            return [sys.executable, "-m", "containers.xgboost.train"]
        if self.kind == "sklearn":  # the framework image: the toolkit runs the job's script-mode entry point
            return [sys.executable, "-m", "containers.sklearn.train", "train"]
        if not self.default_command:
            raise UnsupportedImage(self.image, "its Dockerfile declares no ENTRYPOINT to train with")
        return python_command(self.default_command) + ["train"]

    def processing_command(self, entrypoint: list[str] | None, arguments: list[str] | None) -> list[str]:
        """ContainerEntrypoint (or the image's own) followed by ContainerArguments."""
        command = list(entrypoint or self.default_command)
        if not command:
            raise UnsupportedImage(self.image, "the request has no ContainerEntrypoint and the image declares none")
        return python_command(command) + list(arguments or [])


def _instruction_args(rest: str) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        try:
            return [str(part) for part in json.loads(rest)]
        except json.JSONDecodeError:
            pass
    return shlex.split(rest)


def _dockerfile_command(folder: Path) -> list[str]:
    """ENTRYPOINT + CMD from the folder's Dockerfile, with paths the image COPYs from the folder
    pointed back at the folder (``COPY train.py /opt/program/`` makes /opt/program/train.py
    the folder's train.py)."""
    dockerfile = folder / "Dockerfile"
    if not dockerfile.is_file():
        return []
    entry: list[str] = []
    cmd: list[str] = []
    copies: list[tuple[str, Path]] = []  # (container path, source in the folder)
    for line in dockerfile.read_text().splitlines():
        word, _, rest = line.strip().partition(" ")
        word = word.upper()
        if word == "ENTRYPOINT":
            entry = _instruction_args(rest)
        elif word == "CMD":
            cmd = _instruction_args(rest)
        elif word in ("COPY", "ADD"):
            args = [a for a in _instruction_args(rest) if not a.startswith("--")]
            if len(args) >= 2:
                *sources, dest = args
                for source in sources:
                    into_dir = dest.endswith("/") or len(sources) > 1
                    if (folder / source).is_dir():  # a folder's contents land in dest
                        copies.append((dest.rstrip("/") or "/", folder / source))
                    else:
                        copies.append((dest.rstrip("/") + "/" + Path(source).name if into_dir else dest, folder / source))
    return [_from_copies(arg, copies) for arg in entry + cmd]


def _from_copies(arg: str, copies: list[tuple[str, Path]]) -> str:
    for target, source in copies:
        if arg == target:
            return str(source)
        if arg.startswith(target + "/"):
            return str(source / arg[len(target) + 1:])
    return arg


def _asset_folder(ref: ImageRef, assembly_dirs: list[Path]) -> Path:
    """The source folder of a CDK image asset, found by the tag (the asset hash) in the assembly."""
    tag = ref.tag or ""
    for assembly in assembly_dirs:
        folder = assembly / f"asset.{tag}"
        if folder.is_dir():
            return folder
        for manifest in sorted(assembly.glob("*.assets.json")):
            images = json.loads(manifest.read_text()).get("dockerImages", {})
            for asset_hash, asset in images.items():
                if asset_hash != tag and not any(d.get("imageTag") == tag for d in asset.get("destinations", {}).values()):
                    continue
                directory = asset.get("source", {}).get("directory")
                if directory:
                    return (assembly / directory).resolve()
    raise UnsupportedImage(ref.uri, f"no CDK image asset with hash {tag!r} in {', '.join(map(str, assembly_dirs)) or 'the cloud assembly'}")


def check_xgboost_version(ref: ImageRef) -> None:
    """The XGBoost twin plays one version: any other tag is refused, for training and serving alike."""
    if ref.tag and not ref.tag.startswith(XGBOOST_VERSION.split("-")[0]):
        raise UnsupportedImage(ref.uri, f"the XGBoost twin plays version {XGBOOST_VERSION}, not {ref.tag}")


def resolve_image(uri: str, project_root: Path, assembly_dirs: list[Path] | None = None) -> Launcher:
    """The local launcher for ``uri``; UnsupportedImage (a ValidationException) if there is none.

    ``assembly_dirs`` are the cloud assemblies whose image assets may be named (the runtime passes
    the deployment's; without them, ``<project_root>/cdk.out``)."""
    ref = parse_image(uri)
    project_root = Path(project_root)
    if ref.name == "sagemaker-xgboost":
        check_xgboost_version(ref)
        return Launcher(uri, "xgboost", project_root)
    if ref.name == "sagemaker-scikit-learn":
        return Launcher(uri, "sklearn", project_root)
    if re.match(r"^cdk-[a-z0-9]+-container-assets-", ref.name):
        dirs = list(assembly_dirs or []) or [project_root / "cdk.out"]
        folder = _asset_folder(ref, dirs)
        return Launcher(uri, "asset", folder, _dockerfile_command(folder))
    raise UnsupportedImage(uri, f"repository {ref.name!r} has no local twin")

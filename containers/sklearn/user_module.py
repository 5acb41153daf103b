"""Find and import a script-mode entry point, each model's code kept apart from every other's.

The container imports ``SAGEMAKER_PROGRAM`` (``inference.py`` or ``inference``) from
``SAGEMAKER_SUBMIT_DIRECTORY`` (default ``/opt/ml/code``; the SageMaker Python SDK repacks the code
into model.tar.gz's ``code/`` and points the variable at ``/opt/ml/model/code``). One container runs
one model; this process may hold several (a serial pipeline, an endpoint update), so each entry
point is imported under a private name, and the sibling modules it imports (``import preprocess``)
are taken from its own folder and then removed from ``sys.modules`` so the next model's
``preprocess`` is its own, not the first one loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import sys
import tarfile
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

CONTAINER_MODEL_DIR = "/opt/ml/model"
CONTAINER_CODE_DIR = "/opt/ml/code"

_import_lock = threading.Lock()
_counter = itertools.count()


class ModelLoadError(Exception):
    """The model cannot be served (entry point missing, not importable, model_fn failed); the
    container would fail its health check. The message says what to fix."""


def module_name(program: str) -> str:
    """SAGEMAKER_PROGRAM's module: 'inference.py' -> 'inference' (what the container imports)."""
    return program.removesuffix(".py")


def _unpack(archive: Path) -> Path:
    """A sourcedir.tar.gz unpacked once into a folder named by its content hash."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:20]
    target = Path(tempfile.gettempdir()) / "sagemaker-sklearn-twin" / digest
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        try:
            staging.rename(target)
        except OSError:  # another process unpacked the same archive meanwhile
            pass
    return target


def code_dir(model_dir: Path, environment: Mapping[str, str],
             fetch: Callable[[str], Path] | None = None) -> Path:
    """The folder holding the entry point, from SAGEMAKER_SUBMIT_DIRECTORY as the container reads it.

    A path under /opt/ml/model is taken inside ``model_dir``; an s3:// URI (a sourcedir.tar.gz) goes
    through ``fetch`` to a local file; a .tar.gz is unpacked. Unset: /opt/ml/code, which holds the
    model.tar.gz's ``code/`` when there is one."""
    submit = environment.get("SAGEMAKER_SUBMIT_DIRECTORY") or CONTAINER_CODE_DIR
    if submit == CONTAINER_MODEL_DIR or submit.startswith(CONTAINER_MODEL_DIR + "/"):
        folder = model_dir / submit[len(CONTAINER_MODEL_DIR):].lstrip("/")
    elif submit.rstrip("/") == CONTAINER_CODE_DIR:
        folder = model_dir / "code"
    elif submit.startswith("s3://"):
        if fetch is None:
            raise ModelLoadError(f"SAGEMAKER_SUBMIT_DIRECTORY {submit} is an S3 URI and no S3 is attached to "
                                 "this container; package the code into model.tar.gz's code/ instead.")
        folder = fetch(submit)
    else:
        folder = Path(submit)
    if folder.is_file() and folder.name.endswith((".tar.gz", ".tgz")):
        folder = _unpack(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"The code folder {folder} (SAGEMAKER_SUBMIT_DIRECTORY={submit}) does not exist; "
                             "put the entry point in model.tar.gz's code/ or point SAGEMAKER_SUBMIT_DIRECTORY at it.")
    return folder


def _local_names(folder: Path) -> set[str]:
    """Top-level modules and packages a script in ``folder`` can import by name."""
    names = {p.stem for p in folder.glob("*.py")}
    names |= {p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    return names


def import_entry_point(folder: Path, program: str) -> ModuleType:
    """Import ``program`` from ``folder`` under a private name, isolated as the docstring says."""
    name = module_name(program)
    path = folder / f"{name}.py"
    if not path.is_file():
        package = folder / name / "__init__.py"
        if not package.is_file():
            found = sorted(p.name for p in folder.glob("*.py"))
            raise ModelLoadError(f"SAGEMAKER_PROGRAM {program!r}: no {name}.py in {folder} (found {found}). "
                                 "Set SAGEMAKER_PROGRAM to the entry point's file name.")
        path = package
    with _import_lock:
        shadowed = {n: sys.modules.pop(n) for n in _local_names(folder) if n in sys.modules}
        before = set(sys.modules)
        sys.path.insert(0, str(folder))
        try:
            spec = importlib.util.spec_from_file_location(f"_sagemaker_program_{next(_counter)}_{name}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except Exception as err:
            raise ModelLoadError(f"Importing {program} from {folder} failed: {type(err).__name__}: {err}") from err
        finally:
            sys.path.remove(str(folder))
            for added in set(sys.modules) - before:
                origin = getattr(sys.modules[added], "__file__", None) or ""
                if origin.startswith(str(folder)):
                    del sys.modules[added]  # the entry point keeps its own reference
            sys.modules.update(shadowed)
    return module

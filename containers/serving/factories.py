"""App factories the worker processes build their app with, configured by environment variables.

``model_app``: one model from SAGEMAKER_SERVING_MODEL, a JSON document
``{"containers": [{"name", "image", "model_dir", "environment"}], "batch": false}`` - one container
(its twin) or a serial pipeline of several - on /invocations.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from containers.pipeline import ContainerSpec, load_model
from containers.serving.app import InvocationsApp, StaticResolver

MODEL_VARIABLE = "SAGEMAKER_SERVING_MODEL"


def model_specs(document: dict) -> list[ContainerSpec]:
    return [ContainerSpec(c.get("name") or f"container-{i + 1}", c["image"],
                          Path(c["model_dir"]) if c.get("model_dir") else None, dict(c.get("environment") or {}))
            for i, c in enumerate(document["containers"])]


def model_environment(specs: list[ContainerSpec], batch: bool = False) -> dict[str, str]:
    """The variables ``model_app`` reads, for ServerProcess.start(env=...)."""
    return {MODEL_VARIABLE: json.dumps({"containers": [
        {"name": s.name, "image": s.image, "model_dir": str(s.model_dir) if s.model_dir else None,
         "environment": dict(s.environment)} for s in specs], "batch": batch})}


def model_app() -> InvocationsApp:
    document = json.loads(os.environ[MODEL_VARIABLE])
    specs = model_specs(document)
    return InvocationsApp(StaticResolver(lambda: load_model(specs, batch=bool(document.get("batch")))))

"""`serve` of the scikit-learn framework container: GET /ping and POST /invocations over HTTP.

    python -m containers.sklearn.serve [--ml-root DIR] [--workers N]

The model is <ml root>/model (env SM_ML_ROOT, default /opt/ml) with the entry point named by
SAGEMAKER_PROGRAM, found in SAGEMAKER_SUBMIT_DIRECTORY (default: the model's code/). The server binds
SAGEMAKER_BIND_TO_HOST (default 127.0.0.1; the AWS image binds 0.0.0.0) and SAGEMAKER_BIND_TO_PORT
(default 8080, 0 = a free port), runs SAGEMAKER_MODEL_SERVER_WORKERS worker processes (default one
per CPU, as the image does) and prints `Listening on http://HOST:PORT` once it accepts connections.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a path: make `containers` importable from the project root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from containers.pipeline import ContainerSpec
from containers.serving.factories import model_environment
from containers.serving.workers import serve

IMAGE = "sagemaker-scikit-learn"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ml-root", default=os.environ.get("SM_ML_ROOT", "/opt/ml"))
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    container = {k: v for k, v in os.environ.items() if k.startswith("SAGEMAKER_")}
    spec = ContainerSpec("model", IMAGE, Path(args.ml_root) / "model", container)
    os.environ.update(model_environment([spec]))  # the workers build their app from it
    serve("containers.serving.factories:model_app", os.environ.get("SAGEMAKER_BIND_TO_HOST", "127.0.0.1"),
          int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")), args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())

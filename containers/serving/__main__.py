"""``python -m containers.serving module:factory [--host H] [--port P] [--workers N]``: serve an app."""

from __future__ import annotations

import argparse
import os
import sys

from containers.serving.workers import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", help="import string of a factory returning the ASGI app, e.g. "
                                    "containers.serving.factories:model_app")
    parser.add_argument("--host", default=os.environ.get("SAGEMAKER_BIND_TO_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    serve(args.app, args.host, args.port, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())

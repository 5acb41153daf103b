"""SageMaker's own XGBoost serving stack, rebuilt from its public source for side-by-side benchmarks.

    python benchmarks/reference_xgboost_stack.py --model-dir DIR --port PORT [--workers N]

The shape of sagemaker-xgboost-container's algorithm-mode ``serve.py``: a Flask app (GET /ping,
POST /invocations) run by gunicorn with gevent workers, one per CPU, keep-alive 60 s, the model
loaded in each worker after it forks (post_worker_init). /invocations parses the CSV body as the
container does (strip, decode, sniff the delimiter, numpy array of floats, DMatrix), predicts with
``validate_features=False`` and answers comma-joined scores. Written from the published code, with
the per-request INFO log line left out (it would only slow the reference down).
"""

from __future__ import annotations

import argparse
import csv
import http.client
import os
import sys

import flask
import gunicorn.app.base
import numpy as np
import xgboost as xgb

app = flask.Flask(__name__)
_state: dict[str, xgb.Booster] = {}


def load_model() -> xgb.Booster:
    if "booster" not in _state:
        booster = xgb.Booster()
        booster.load_model(os.path.join(os.environ["REFERENCE_MODEL_DIR"], "xgboost-model"))
        _state["booster"] = booster
    return _state["booster"]


def _csv_to_dmatrix(text: str) -> xgb.DMatrix:
    delimiter = csv.Sniffer().sniff(text.split("\n")[0][:512]).delimiter
    delimiter = "," if delimiter.isalnum() else delimiter
    rows = [line.strip().split(delimiter) for line in text.split("\n")]
    return xgb.DMatrix(np.array(rows).astype(float))


@app.route("/ping", methods=["GET"])
def ping():
    load_model()
    return flask.Response(status=http.client.OK)


@app.route("/invocations", methods=["POST"])
def invocations():
    payload = flask.request.data
    if len(payload) == 0:
        return flask.Response(response="", status=http.client.NO_CONTENT)
    try:
        dtest = _csv_to_dmatrix(payload.strip().decode("utf-8"))
    except Exception as err:  # noqa: BLE001 - the container answers every parse failure with 415
        return flask.Response(response=f"Loading csv data failed with Exception: {err}",
                              status=http.client.UNSUPPORTED_MEDIA_TYPE)
    try:
        predictions = load_model().predict(dtest, validate_features=False)
    except Exception as err:  # noqa: BLE001 - and every scoring failure with 400
        return flask.Response(response=f"Unable to evaluate payload provided: {err}", status=http.client.BAD_REQUEST)
    return flask.Response(response=",".join(map(str, predictions.tolist())), status=http.client.OK,
                          mimetype="text/csv")


class GunicornApplication(gunicorn.app.base.BaseApplication):
    def __init__(self, application, options: dict) -> None:
        self.options, self.application = options, application
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.application


def _post_worker_init(worker) -> None:
    load_model()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    os.environ["REFERENCE_MODEL_DIR"] = args.model_dir
    GunicornApplication(app, {"bind": f"{args.host}:{args.port}", "workers": args.workers, "worker_class": "gevent",
                              "keepalive": 60, "post_worker_init": _post_worker_init, "loglevel": "warning"}).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Serving a script-mode model as the scikit-learn container does: model_fn once, then per request
``transform_fn`` or ``input_fn`` -> ``predict_fn`` -> ``output_fn``.

    predictor = load_predictor(model_dir, environment={"SAGEMAKER_PROGRAM": "inference.py"})
    response = predictor.invoke(b"1,2,3", "text/csv", "application/json")

The contract kept from the container:
- ``model_fn(model_dir)`` is required (the container has no default); a module defining
  ``transform_fn`` together with any of ``input_fn``/``predict_fn``/``output_fn`` is refused.
- Content-Type defaults to application/json; an Accept that is missing or ``*/*`` becomes
  SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT (default application/json). The header is passed on as sent.
- Bodies of type text/csv and application/json reach the functions as str, others as bytes.
- Defaults: input_fn decodes csv/json/npy to a 2-D numpy array (float32 for csv and json; one
  row is one row, not a column), predict_fn
  calls ``model.predict``, output_fn encodes csv/json/npy (codecs.py).
- transform_fn (or output_fn) returns the body, or ``(body, content_type)``; a bare body is sent as
  the accept type.
- Errors: an unsupported content type answers 415, an unsupported accept 406 (JSON body with
  ``error`` and ``error-message``); an exception carrying an integer ``status_code`` (the inference
  toolkit's BaseInferenceToolkitError shape: ``status_code``, ``message``) answers that status with
  its message; anything else 500 with the exception's type and message.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from containers.protocol import Response
from containers.sklearn import codecs
from containers.sklearn.user_module import ModelLoadError, code_dir, import_entry_point

log = logging.getLogger(__name__)

_HANDLERS = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")


def default_input_fn(input_data: str | bytes, content_type: str) -> np.ndarray:
    array = codecs.decode(input_data, content_type)
    if array.ndim == 1:  # one row, squeezed by the decoder (the inference toolkit reshapes it back)
        array = array.reshape(1, -1)
    return array.astype(np.float32) if content_type in codecs.UTF8_TYPES else array


def default_predict_fn(input_data: Any, model: Any) -> Any:
    return model.predict(input_data)


def default_output_fn(prediction: Any, accept: str) -> tuple[str | bytes, str]:
    return codecs.encode(prediction, accept), accept


class _Stage(Exception):
    """An UnsupportedFormatError raised while decoding (415) or encoding (406)."""

    def __init__(self, status: int, error: Exception) -> None:
        super().__init__(str(error))
        self.status, self.error = status, error


class Predictor:
    """One loaded script-mode model; ``invoke`` answers one /invocations request."""

    def __init__(self, module: Any, model: Any, default_accept: str = codecs.JSON, name: str = "model") -> None:
        self.module, self.model, self.default_accept, self.name = module, model, default_accept, name
        transform_fn = getattr(module, "transform_fn", None)
        self._input_fn = getattr(module, "input_fn", None) or default_input_fn
        self._predict_fn = getattr(module, "predict_fn", None) or default_predict_fn
        self._output_fn = getattr(module, "output_fn", None) or default_output_fn
        self._transform_fn: Callable[..., Any] = transform_fn or self._default_transform_fn
        self._execution_parameters_fn = getattr(module, "execution_parameters_fn", None)

    def _default_transform_fn(self, model: Any, data: str | bytes, content_type: str, accept: str) -> Any:
        try:
            decoded = self._input_fn(data, content_type)
        except codecs.UnsupportedFormatError as err:
            raise _Stage(415, err) from err
        prediction = self._predict_fn(decoded, model)
        try:
            return self._output_fn(prediction, accept)
        except codecs.UnsupportedFormatError as err:
            raise _Stage(406, err) from err

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> Response:
        content_type = content_type or codecs.JSON
        if not accept or accept == codecs.ANY:
            accept = self.default_accept
        data: str | bytes = body.decode("utf-8", "replace") if content_type in codecs.UTF8_TYPES else body
        try:
            result = self._transform_fn(self.model, data, content_type, accept)
        except _Stage as err:
            payload = {"error": type(err.error).__name__, "error-message": str(err.error)}
            return Response(err.status, json.dumps(payload).encode(), codecs.JSON)
        except Exception as err:
            status = getattr(err, "status_code", None)
            if isinstance(status, int) and 400 <= status < 600:
                message = getattr(err, "message", None) or str(err)
                return Response(status, str(message).encode(), "text/plain")
            log.exception("%s: the entry point raised", self.name)
            return Response(500, f"{type(err).__name__}: {err}".encode(), "text/plain")
        body_out, out_type = result if isinstance(result, tuple) else (result, accept)
        if isinstance(body_out, str):
            body_out = body_out.encode("utf-8")
        elif not isinstance(body_out, (bytes, bytearray)):
            return Response(500, f"{self.name}: the entry point returned {type(body_out).__name__}, "
                                 "not str or bytes".encode(), "text/plain")
        return Response(200, bytes(body_out), out_type)

    def execution_parameters(self) -> Response | None:
        """GET /execution-parameters: only when the module defines ``execution_parameters_fn``."""
        if self._execution_parameters_fn is None:
            return None
        result = self._execution_parameters_fn()
        body, out_type = result if isinstance(result, tuple) else (result, codecs.JSON)
        return Response(200, body.encode() if isinstance(body, str) else bytes(body), out_type)


def _check_handlers(module: Any, program: str) -> None:
    if getattr(module, "model_fn", None) is None:
        raise ModelLoadError(f"{program} defines no model_fn: the scikit-learn container has no default. "
                             "Define model_fn(model_dir) returning the loaded model.")
    if getattr(module, "transform_fn", None) and any(getattr(module, n, None) for n in ("input_fn", "predict_fn", "output_fn")):
        raise ModelLoadError(f"{program}: cannot use transform_fn implementation with input_fn, predict_fn, "
                             "and/or output_fn. Define either transform_fn or the other three.")
    for name in _HANDLERS:
        handler = getattr(module, name, None)
        if handler is not None and not callable(handler):
            raise ModelLoadError(f"{program}: {name} is not a function.")


def load_predictor(model_dir: str | os.PathLike[str], batch: bool = False,
                   environment: Mapping[str, str] | None = None,
                   fetch: Callable[[str], Path] | None = None) -> Predictor:
    """Import the entry point for the model extracted in ``model_dir`` and call its model_fn.

    ``environment`` is the container's (the model's Environment; default this process's).
    ``batch`` is accepted for the hosting interface (SAGEMAKER_BATCH); the container's default
    functions do not depend on it."""
    env = dict(os.environ if environment is None else environment)
    folder = Path(model_dir)
    if not folder.is_dir():
        raise ModelLoadError(f"Model folder {folder} does not exist; extract model.tar.gz into it.")
    program = env.get("SAGEMAKER_PROGRAM")
    if not program:
        raise ModelLoadError("SAGEMAKER_PROGRAM is not set: set it in the model's Environment to the entry point's "
                             "file name (for example inference.py), as the SageMaker Python SDK does.")
    module = import_entry_point(code_dir(folder, env, fetch), program)
    _check_handlers(module, program)
    try:
        signature = inspect.signature(module.model_fn)
        model = module.model_fn(str(folder)) if len(signature.parameters) else module.model_fn()
    except Exception as err:
        raise ModelLoadError(f"{program}: model_fn({folder}) raised {type(err).__name__}: {err}") from err
    default_accept = env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or codecs.JSON
    log.info("Loaded %s from %s (default accept %s)", program, folder, default_accept)
    return Predictor(module, model, default_accept=default_accept, name=program)

"""Models of one or several containers: each container's twin by image, and the serial pipeline.

    pipeline = load_model([ContainerSpec("featurizer", SKLEARN_IMAGE, featurizer_dir, featurizer_env),
                           ContainerSpec("model", XGBOOST_IMAGE, model_dir, model_env),
                           ContainerSpec("decoder", SKLEARN_IMAGE, decoder_dir, decoder_env)])
    response = pipeline.invoke(b"M,0.455,...", "text/csv", "application/json")

A serial inference pipeline (CreateModel ``Containers`` with ``InferenceExecutionConfig`` Serial)
passes each container's response body to the next as its request, with the response's content
type as the next Content-Type. The caller's Accept goes to the last container; the ones before it
answer in their own default (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT in their Environment), which is
how a pipeline chooses its intermediate formats. The first container that answers an error ends
the request: that status and body are the answer, and ``Response.container`` names the container.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from containers.protocol import Predictor, Response

log = logging.getLogger(__name__)

_REPOSITORY = re.compile(r"^(?:[^/]+\.[^/]+/)?(?:[^:@]+/)?(?P<name>[^/:@]+)(?::[^@]*)?(?:@.*)?$")


class UnsupportedContainer(Exception):
    """An image no local twin serves; the message names the image and the twins there are."""


@dataclass(frozen=True)
class PipelineResponse(Response):
    """A Response that also names the container it came from (set on errors)."""

    container: str | None = None


@dataclass(frozen=True)
class ContainerSpec:
    """One entry of CreateModel's Containers (or its PrimaryContainer), its model.tar.gz extracted."""

    name: str  # ContainerHostname, else container-<n>
    image: str
    model_dir: Path | None
    environment: Mapping[str, str] = field(default_factory=dict)


def image_twin(image: str) -> str:
    """'xgboost' or 'sklearn': the twin that serves an AWS image, by repository (any account/region)."""
    match = _REPOSITORY.match(image.strip())
    name = match.group("name") if match else ""
    if name == "sagemaker-xgboost":
        return "xgboost"
    if name == "sagemaker-scikit-learn":
        return "sklearn"
    raise UnsupportedContainer(f"Image {image!r} has no local serving twin; the emulator serves the built-in "
                               "XGBoost image (sagemaker-xgboost) and the scikit-learn framework image "
                               "(sagemaker-scikit-learn).")


def load_container(spec: ContainerSpec, batch: bool = False,
                   fetch: Callable[[str], Path] | None = None) -> Predictor:
    """The twin of ``spec.image`` with the container's model and Environment loaded."""
    twin = image_twin(spec.image)
    if spec.model_dir is None:
        raise UnsupportedContainer(f"Container {spec.name} has no ModelDataUrl; give it a model.tar.gz.")
    if twin == "sklearn":
        from containers.sklearn.transformer import load_predictor

        return load_predictor(spec.model_dir, batch=batch, environment=spec.environment, fetch=fetch)
    from containers.xgboost.serving import load_predictor as load_xgboost

    predictor = load_xgboost(spec.model_dir, batch=batch)
    # the XGBoost twin reads this variable from the process; a container reads its own Environment
    predictor.default_accept = spec.environment.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or predictor.default_accept
    return predictor


class SerialPipeline:
    """Containers invoked in order, each one's answer the next one's request (module docstring)."""

    def __init__(self, containers: list[tuple[str, Predictor]]) -> None:
        if not containers:
            raise ValueError("A serial pipeline needs at least one container.")
        self.containers = containers
        self._last = len(containers) - 1

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> Response:
        response: Response | None = None
        for index, (name, predictor) in enumerate(self.containers):
            try:
                response = predictor.invoke(body, content_type, accept if index == self._last else None)
            except Exception as err:  # a twin's bug is this container's 500, named
                log.exception("container %s raised", name)
                return PipelineResponse(500, f"{type(err).__name__}: {err}".encode(), "text/plain", container=name)
            if response.status >= 400:
                return PipelineResponse(response.status, response.body, response.content_type, container=name)
            body, content_type = response.body, response.content_type
        return response


def load_model(specs: list[ContainerSpec], batch: bool = False,
               fetch: Callable[[str], Path] | None = None) -> Predictor:
    """One container's twin, or a SerialPipeline of several (loaded in order; the first failure raises)."""
    predictors = [(spec.name, load_container(spec, batch=batch, fetch=fetch)) for spec in specs]
    return predictors[0][1] if len(predictors) == 1 else SerialPipeline(predictors)

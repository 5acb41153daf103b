"""Container images of the pipeline's jobs, resolved offline by the SageMaker SDK."""

from __future__ import annotations

from dataclasses import dataclass

from sagemaker.core import image_uris

# The built-in XGBoost image. Keep the local xgboost pin (requirements.txt) on the same release:
# models written by a newer xgboost are silently mis-read by this container.
XGBOOST_VERSION = "3.0-5"
# The newest scikit-learn processing image the SDK lists; preprocess.py stays compatible with it.
SKLEARN_VERSION = "1.9-0"


@dataclass(frozen=True)
class PipelineImages:
    xgboost: str
    sklearn: str

    @classmethod
    def for_region(cls, region: str) -> PipelineImages:
        return cls(
            xgboost=image_uris.retrieve("xgboost", region=region, version=XGBOOST_VERSION),
            sklearn=image_uris.retrieve("sklearn", region=region, version=SKLEARN_VERSION, instance_type="ml.m5.large"),
        )

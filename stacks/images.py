"""Container images of the pipeline's jobs, resolved offline by the SageMaker SDK."""

from __future__ import annotations

from dataclasses import dataclass

from sagemaker.core import image_uris

# The built-in XGBoost image. Keep the local xgboost pin (requirements.txt) on the same release:
# models written by a newer xgboost are silently mis-read by this container.
XGBOOST_VERSION = "3.0-5"
# The newest scikit-learn version the SDK lists for both scopes (processing and serving use the
# inference scope, script-mode training the training scope; at 1.9-0 both name the same image).
# preprocess.py and training_scripts/ stay compatible with it.
SKLEARN_VERSION = "1.9-0"


@dataclass(frozen=True)
class PipelineImages:
    xgboost: str
    sklearn: str  # processing jobs and the serving containers (featurizer, label decoder, Random Forest)
    sklearn_training: str = ""  # script-mode training jobs (training_scripts/<model>/)

    @classmethod
    def for_region(cls, region: str) -> PipelineImages:
        def sklearn(scope: str) -> str:
            return image_uris.retrieve("sklearn", region=region, version=SKLEARN_VERSION, instance_type="ml.m5.large",
                                       image_scope=scope)

        return cls(
            xgboost=image_uris.retrieve("xgboost", region=region, version=XGBOOST_VERSION),
            sklearn=sklearn("inference"),
            sklearn_training=sklearn("training"),
        )

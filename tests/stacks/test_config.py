"""The typed pipeline config: cdk.json defaults, -c overrides as strings, clear errors."""

import json
from pathlib import Path

import pytest

from stacks.config import ConfigError, PipelineConfig

CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"


def test_cdk_json_defaults_match_the_dataclass_defaults():
    context = json.loads(CDK_JSON.read_text())["context"]["pipeline"]
    assert PipelineConfig.from_context(context) == PipelineConfig()


def test_string_overrides_from_the_command_line_are_coerced():
    config = PipelineConfig.from_context({"quality_threshold": "0.91", "tuning_enabled": "false", "tuning_max_jobs": "4"})
    assert config.quality_threshold == 0.91 and config.tuning_enabled is False and config.tuning_max_jobs == 4


@pytest.mark.parametrize(
    "context, words",
    [
        ({"qualty_metric": "auc"}, "unknown pipeline setting"),
        ({"quality_metric": "bleu"}, "quality_metric 'bleu'"),
        ({"tuning_max_jobs": "many"}, "not a valid int"),
        ({"quality_threshold": "high"}, "must be a number or 'auto'"),
        ({"quality_metric": "auc", "quality_threshold": "2.6"}, r"outside auc's range \[0, 1\]"),
        ({"quality_metric": "rmse", "quality_threshold": -1}, r"outside rmse's range \[0, inf\)"),
        ({"tuning_max_parallel_jobs": 9}, "tuning_max_parallel_jobs"),
        ({"raw_prefix": "/raw"}, "raw_prefix"),
    ],
)
def test_bad_settings_are_named(context, words):
    with pytest.raises(ConfigError, match=words):
        PipelineConfig.from_context(context)


def test_quality_defaults_are_auto_and_explicit_values_are_kept():
    assert (PipelineConfig().quality_metric, PipelineConfig().quality_threshold) == ("auto", "auto")
    config = PipelineConfig.from_context({"quality_metric": "auc", "quality_threshold": "0.85"})
    assert (config.quality_metric, config.quality_threshold) == ("auc", 0.85)
    assert PipelineConfig.from_context({"quality_threshold": "auto"}).quality_threshold == "auto"


def test_execution_defaults_leave_out_deploy_only_settings():
    defaults = PipelineConfig().execution_defaults()
    assert "raw_prefix" not in defaults and "endpoint_instance_count" not in defaults
    assert defaults["target_column"] == "rings"

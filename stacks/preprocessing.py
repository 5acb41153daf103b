"""The training pipeline's preprocessing: one processing job, or three when it is sharded over instances.

processing_instance_count 1: "Preprocess", one job (preprocess.py; the in-memory engine for tables up to
64 MiB, the bounded-memory chunked engine above). processing_instance_count N >= 2: the chunked engine's
three stages as three jobs, the way SageMaker scales processing out —
  Preprocess statistics  N instances; each reads its byte range of the raw input (its rank from
                         /opt/ml/config/resourceconfig.json) and writes partial statistics;
  Preprocess             one instance merges them into schema.json, baseline.json, the featurizer and
                         decoder archives, and the plan the next job applies;
  Preprocess transform   N instances; each encodes its byte range with the plan and writes its own files
                         of every split.
The raw input is FullyReplicated (each instance cuts its own byte range, so one large object shards as
well as many). Either way preprocess writes the train split in as many files as training hosts, so the
training job's ShardedByS3Key channel gives every host its share.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_stepfunctions as sfn

PROCESSING = "/opt/ml/processing"
OUTPUT = f"{PROCESSING}/output"
SPLITS = ("train", "validation", "test", "batch")
MODELS = ("schema", "featurizer", "decoder")
STATISTICS = "States.Format('{}processed/statistics/', $.plan.paths.run)"
PLAN = "States.Format('{}processed/plan/', $.plan.paths.run)"


def _arguments(stage: str | None, extra: str = "", input_dir: str = f"{PROCESSING}/input/raw") -> str:
    base = (
        f"'--input-dir', '{input_dir}', '--output-dir', '/opt/ml/processing/output', "
        "'--target-column', $.plan.config.target_column, '--problem-type', $.plan.problem_type, "
        "'--validation-fraction', States.Format('{}', $.plan.config.validation_fraction), "
        "'--test-fraction', States.Format('{}', $.plan.config.test_fraction), "
        "'--train-shards', States.Format('{}', $.plan.config.training_instance_count)"
    )
    if stage:
        base += f", '--engine', 'chunked', '--stage', '{stage}'{extra}"
    return f"States.Array({base})"


def _sized(parameters: dict[str, Any], instances: int) -> dict[str, Any]:
    parameters["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = instances
    return parameters


def preprocess_steps(pipeline: Any, failure: sfn.IChainable, instances: int) -> sfn.IChainable:
    """The preprocessing states of ``pipeline`` (a TrainingPipeline: its job helpers and props)."""
    raw = ("raw", "$.plan.paths.input", f"{PROCESSING}/input/raw")
    outputs = [(name, f"$.plan.paths.{name}", f"{OUTPUT}/{name}") for name in (*SPLITS, *MODELS)]
    image = pipeline.props.images.sklearn
    selector = {"ProcessingJobName.$": "$.ProcessingJobName", "ProcessingJobStatus.$": "$.ProcessingJobStatus"}
    if instances <= 1:
        parameters = pipeline.processing_parameters("$.plan.job_names.preprocess", image, "preprocess.py",
                                                     _arguments(None), inputs=[raw], outputs=outputs)
        return pipeline.job_state("Preprocess", "createProcessingJob", parameters, selector, "$.preprocess", failure,
                                   "Clean, encode and split the raw CSV into label-first train/validation/test")
    statistics = pipeline.processing_parameters(
        "$.plan.job_names.preprocess_statistics", image, "preprocess.py", _arguments("statistics"),
        inputs=[raw], outputs=[("statistics", STATISTICS, f"{OUTPUT}/statistics")])
    merge = pipeline.processing_parameters(
        "$.plan.job_names.preprocess", image, "preprocess.py",
        _arguments("merge", f", '--statistics-dir', '{PROCESSING}/input/statistics'", f"{PROCESSING}/input/statistics"),
        inputs=[("statistics", STATISTICS, f"{PROCESSING}/input/statistics")],  # the merge reads only the partials
        outputs=[*[o for o in outputs if o[0] in MODELS], ("plan", PLAN, f"{OUTPUT}/plan")])
    transform = pipeline.processing_parameters(
        "$.plan.job_names.preprocess_transform", image, "preprocess.py",
        _arguments("transform", f", '--statistics-dir', '{PROCESSING}/input/plan'"),
        inputs=[raw, ("plan", PLAN, f"{PROCESSING}/input/plan")],
        outputs=[o for o in outputs if o[0] in SPLITS])
    return (
        pipeline.job_state("Preprocess statistics", "createProcessingJob", _sized(statistics, instances), selector,
                            "$.preprocess_statistics", failure,
                            f"Partial statistics of the raw CSV on {instances} instances, each its byte range")
        .next(pipeline.job_state("Preprocess", "createProcessingJob", merge, selector, "$.preprocess", failure,
                                  "Merge the partial statistics: schema, baseline, featurizer and the plan"))
        .next(pipeline.job_state("Preprocess transform", "createProcessingJob", _sized(transform, instances),
                                  selector, "$.preprocess_transform", failure,
                                  f"Encode and split the raw CSV on {instances} instances with the merged plan"))
    )

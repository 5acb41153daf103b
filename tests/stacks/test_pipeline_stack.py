"""The real synthesized template: integrations, error handling, IAM, trigger, cdk-nag, cfn-lint.

The app is synthesized once per module (as app.py builds it, cdk-nag included) and each test
checks one concern, in the parsed state machine definition rather than a snapshot.
"""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Annotations, Match, Template
from definitions import all_states, machine_definition

SAGEMAKER = "arn:aws:states:::sagemaker:"


@pytest.fixture(scope="module")
def app_and_stack(synthesized):
    return synthesized  # synthesized once per session (conftest.py)


@pytest.fixture(scope="module")
def template(app_and_stack) -> Template:
    return Template.from_stack(app_and_stack[0])


@pytest.fixture(scope="module")
def template_json(app_and_stack) -> dict:
    stack, assembly = app_and_stack
    return assembly.get_stack_by_name(stack.stack_name).template


@pytest.fixture(scope="module")
def definition(template_json) -> dict:
    # the training state machine (the inference one has its own module, test_inference_stack.py)
    return machine_definition(template_json, "TrainingPipeline")


def _resources(definition: dict) -> dict[str, str]:
    return {name: s["Resource"] for name, s in all_states(definition).items() if s["Type"] == "Task"}


def test_every_sagemaker_integration_is_present_with_sync_where_a_job_runs(definition):
    resources = _resources(definition)
    expected = {
        "Preprocess": "createProcessingJob.sync",
        "Tune hyperparameters": "createHyperParameterTuningJob.sync",
        "Train model": "createTrainingJob.sync",
        "Evaluate model": "createProcessingJob.sync",
        "Batch transform": "createTransformJob.sync",
        "Create model": "createModel",
        "Create endpoint config": "createEndpointConfig",
        "Create endpoint": "createEndpoint",
        "Update endpoint": "updateEndpoint",
    }
    for state, action in expected.items():
        assert resources[state] == SAGEMAKER + action, state
    assert resources["Find endpoint"].endswith("aws-sdk:sagemaker:describeEndpoint")
    assert resources["Register model package"].endswith("aws-sdk:sagemaker:createModelPackage")


def test_state_order_follows_the_design(definition):
    states = definition["States"]
    assert definition["StartAt"] == "Input is an object?"
    assert states["Input is an object?"]["Default"] == "Collect input"
    assert states["Collect input"]["Next"] == "Apply defaults"
    assert states["Apply defaults"]["Next"] == "Validate input"
    assert states["Validate input"]["Next"] == "Preprocess"
    assert states["Preprocess"]["Next"] == "Train candidates"
    assert states["Train candidates"]["Type"] == "Map" and states["Train candidates"]["Next"] == "Select winner"
    assert states["Select winner"]["Next"] == "Register other candidates"
    assert states["Register other candidates"]["Next"] == "Describe this run"  # the champion scored on this split
    assert states["Champion compared"]["Next"] == "Quality gate"
    inside = all_states(states["Train candidates"]["ItemProcessor"])
    choice = inside["Tuning enabled?"]
    assert choice["Choices"][0]["Next"] == "Tune hyperparameters"
    assert choice["Default"] == "Use configured hyperparameters"
    assert inside["Use tuned hyperparameters"]["Next"] == "Train model"
    assert inside["Train model"]["Next"] == "Serve with XGBoost"
    assert inside["Serve with XGBoost"]["Next"] == "Evaluate model"
    assert inside["Evaluate model"]["Next"] == "Candidate trained"
    assert states["Good enough?"]["Default"] == "Model below threshold"
    assert states["Score and deploy"]["Type"] == "Parallel"
    assert len(states["Score and deploy"]["Branches"]) == 2


def test_tuned_hyperparameters_are_merged_over_the_static_ones(definition):
    states = all_states(definition)
    merge = states["Use tuned hyperparameters"]["Parameters"]["values.$"]
    assert merge == "States.JsonMerge($.candidate.hyperparameters, $.tuning.TunedHyperParameters, false)"
    train = states["Train model"]["Parameters"]
    assert train["HyperParameters.$"] == "$.hyperparameters.values"
    tuning = states["Tune hyperparameters"]["Parameters"]
    assert tuning["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingImage"].endswith("sagemaker-xgboost:3.0-5")


def test_every_task_has_retry_and_catch(definition):
    for name, state in all_states(definition).items():
        if state["Type"] != "Task":
            continue
        assert state.get("Retry"), f"{name} has no Retry"
        assert state.get("Catch"), f"{name} has no Catch"
        for retrier in state["Retry"]:
            assert "States.ALL" not in retrier["ErrorEquals"], f"{name} retries every error"
            assert retrier.get("BackoffRate", 1) > 1 and retrier.get("JitterStrategy") == "FULL", name
        assert any("States.ALL" in c["ErrorEquals"] for c in state["Catch"]), f"{name} catches only some errors"


FAILURE_HANDLER = ("Read lock on failure", "Release lock on failure", "Notify failure")


def test_catches_end_in_the_notifying_failure_handler(definition):
    top = definition["States"]
    for name, state in top.items():
        for catcher in state.get("Catch", []):
            if "States.ALL" in catcher["ErrorEquals"] and name not in FAILURE_HANDLER:
                assert catcher["Next"] == "Read lock on failure", name
                assert catcher["ResultPath"] == "$.error"
    assert top["Notify failure"]["Resource"].endswith(":sns:publish")
    assert top["Notify failure"]["Next"] == "Pipeline failed"
    assert top["Pipeline failed"] == {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}
    assert top["Model below threshold"]["Parameters"]["Error"] == "ModelQualityBelowThreshold"
    assert top["Model below threshold"]["Next"] == "Read lock on failure"
    # the handler first releases the deploy lock, only when this execution holds it
    assert top["Holding the deploy lock?"]["Choices"][0] == {
        "Variable": "$.lock_on_failure.holder", "StringEqualsPath": "$$.Execution.Id", "Next": "Release lock on failure"}
    assert top["Holding the deploy lock?"]["Default"] == "Notify failure"
    for name in ("Read lock on failure", "Release lock on failure"):
        assert top[name]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Notify failure"}]


def test_tasks_keep_the_state_they_were_given(definition):
    """Every Task that is not a branch's last state writes its result under its own key (or
    discards it); a branch's last Task hands its selected result to the Parallel."""
    for name, state in all_states(definition).items():
        if state["Type"] == "Task" and not state.get("End"):
            assert "ResultPath" in state, f"{name} would replace the whole state with its result"


def test_jobs_and_execution_have_timeouts(definition, template):
    for name, state in all_states(definition).items():
        if state["Type"] == "Task" and ".sync" in state["Resource"]:
            assert state.get("TimeoutSeconds") or state.get("TimeoutSecondsPath"), name
    # A search runs waves of trials: its timeout comes from the plan (waves x job timeout + margin).
    for search in ("Tune hyperparameters", "Tune random forest"):
        assert all_states(definition)[search]["TimeoutSecondsPath"] == "$.candidate.tuning_timeout_seconds"
    template.has_resource_properties("AWS::StepFunctions::StateMachine", {"TracingConfiguration": {"Enabled": True}})
    assert definition["TimeoutSeconds"] == 21600


def test_endpoint_rollout_is_blue_green_and_polled_with_a_bound(definition):
    deploy = definition["States"]["Score and deploy"]["Branches"][1]["States"]
    assert deploy["Update endpoint"]["Parameters"]["DeploymentConfig.$"] == "$.plan.deployment_config"
    assert deploy["Update endpoint"]["ResultPath"] == "$.endpoint_update"  # keeps $.plan for the polling
    assert deploy["Find endpoint"]["Catch"][0] == {
        "ErrorEquals": ["SageMaker.SageMakerException"], "ResultPath": "$.existing", "Next": "Endpoint missing?"
    }
    # Only "not found" creates an endpoint; throttling or access denied fail the deploy instead.
    missing = deploy["Endpoint missing?"]
    assert missing["Choices"][0] == {"Variable": "$.existing.Cause", "StringMatches": '*Could not find endpoint "*',
                                     "Next": "Create endpoint"}
    choices = deploy["Endpoint ready?"]["Choices"]
    # InService on the new config is success; InService on the old one is a rollback, not a deploy.
    assert choices[0]["And"][1] == {"Variable": "$.endpoint.EndpointConfigName",
                                    "StringEqualsPath": "$.plan.job_names.endpoint_config"}
    assert choices[0]["Next"] == "Endpoint in service"
    assert choices[1]["Next"] == "Endpoint rolled back"
    assert deploy["Endpoint rolled back"]["Error"] == "EndpointDeploymentRolledBack"
    assert any(c.get("NumericGreaterThanEquals") for c in choices[2]["Or"])


def _policy_actions(template_json: dict) -> list[tuple[str, list]]:
    found = []
    for logical_id, res in template_json["Resources"].items():
        if res["Type"] == "AWS::IAM::Policy":
            for statement in res["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                found += [(logical_id, a, statement) for a in actions]
    return found


def test_iam_grants_what_the_definition_calls_and_no_sagemaker_wildcard(template_json, definition):
    actions = _policy_actions(template_json)
    names = {a.lower() for _, a, _ in actions}  # IAM action names are case-insensitive
    assert not [a for a in names if a in ("sagemaker:*", "*") or a.endswith(":*")]
    for needed in (
        "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:CreateHyperParameterTuningJob",
        "sagemaker:CreateTrainingJob", "sagemaker:CreateTransformJob", "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig", "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint",
        "sagemaker:DescribeEndpoint", "sagemaker:CreateModelPackage", "events:PutRule", "events:PutTargets",
        "events:DescribeRule", "iam:PassRole", "sns:Publish", "lambda:InvokeFunction",
    ):
        assert needed.lower() in names, needed
    rules = [s for _, a, s in actions if a.lower() == "events:putrule"]
    assert all("StepFunctionsGetEventsForSageMaker" in json.dumps(s["Resource"]) for s in rules)
    for _, action, statement in actions:
        if action == "iam:PassRole":
            assert statement["Resource"] != "*"


def test_state_machine_role_can_do_what_its_tasks_need(template_json):
    """Only the policies attached to the state machine's own role count here."""
    resources = template_json["Resources"]
    machine = next(r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        st for r in resources.values() if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
        for st in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    granted = {a.lower() for st in statements for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    for action in ("sagemaker:CreateProcessingJob", "sagemaker:CreateHyperParameterTuningJob", "sagemaker:CreateTrainingJob",
                   "sagemaker:CreateTransformJob", "sagemaker:CreateModel", "sagemaker:CreateEndpointConfig",
                   "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint",
                   "sagemaker:CreateModelPackage", "lambda:InvokeFunction", "sns:Publish", "s3:GetObject",
                   "s3:PutObject", "iam:PassRole", "kms:CreateGrant", "kms:Decrypt", "events:PutRule"):
        assert action.lower() in granted, action
    grants = [st for st in statements if "kms:CreateGrant" in st["Action"]]
    assert all(st["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}} for st in grants)


def test_s3_upload_rule_starts_the_state_machine_with_the_object_uri(template):
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [Match.any_value()]}, "object": {"key": [{"wildcard": "raw/*.csv"}]}},
            },
            "Targets": [
                Match.object_like(
                    {
                        "InputTransformer": {
                            "InputPathsMap": {
                                "detail-bucket-name": "$.detail.bucket.name",
                                "detail-object-key": "$.detail.object.key",
                            },
                            "InputTemplate": '{"input_s3_uri":"s3://<detail-bucket-name>/<detail-object-key>"}',
                        },
                        "RetryPolicy": {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 7200},
                        "DeadLetterConfig": {"Arn": Match.any_value()},
                    }
                )
            ],
        },
    )


def test_bucket_is_encrypted_private_ssl_only_versioned_and_logged(template):
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [Match.object_like(
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": Match.any_value()}}
            )]},
            "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                               "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "data-bucket/"}),
        },
    )


def test_failed_executions_alarm_notifies_the_topic(template):
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"Metrics": Match.array_with([Match.object_like({"Expression": "failed + timedout"})]),
         "AlarmActions": [{"Ref": Match.string_like_regexp("NotificationsTopic")}]},
    )


def test_cdk_nag_reports_no_unsuppressed_errors(app_and_stack):
    stack = app_and_stack[0]
    errors = Annotations.from_stack(stack).find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))
    assert errors == [], [e.entry.data for e in errors]
    assert warnings == [], [w.entry.data for w in warnings]


def test_cfn_lint_reports_no_errors(template_json):
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(template_json), config=ManualArgs(regions=["us-east-1"]))
    errors = [str(m) for m in matches if m.rule.id.startswith("E")]
    assert errors == []
    # Warnings are limited to CDK's own explicit DependsOn beside a GetAtt (W3005).
    assert {m.rule.id for m in matches if not m.rule.id.startswith("E")} <= {"W3005"}, [str(m) for m in matches if m.rule.id != "W3005"]


# --- the deployed model is a serial inference pipeline (featurizer -> XGBoost -> label decoder) ---


def test_the_model_is_a_serial_pipeline_of_featurizer_xgboost_and_decoder(definition):
    from processing_scripts.serving.package import CONTAINER_ENVIRONMENT

    create = all_states(definition)["Create model"]
    assert create["Resource"] == SAGEMAKER + "createModel"
    parameters = create["Parameters"]
    assert "PrimaryContainer" not in parameters
    assert parameters["InferenceExecutionConfig"] == {"Mode": "Serial"}
    containers = parameters["Containers"]
    assert [c["ContainerHostname"] for c in containers] == ["featurizer", "model", "decoder"]
    assert containers[0]["Image"].endswith("/sagemaker-scikit-learn:1.9-0-cpu-py3")
    # the middle one is the winner's: its image and environment come from its fan-out entry
    assert containers[1]["Image.$"] == "$.selection.winner.serving.Image"
    assert containers[1]["Environment.$"] == "$.selection.winner.serving.Environment"
    assert containers[2]["Image"] == containers[0]["Image"]
    assert [c["ModelDataUrl.$"] for c in containers] == [
        "$.plan.paths.featurizer_model", "$.selection.winner.model_data", "$.plan.paths.decoder_model"]
    assert [containers[0]["Environment"], containers[2]["Environment"]] == [CONTAINER_ENVIRONMENT[n] for n in ("featurizer", "decoder")]
    assert containers[0]["Environment"]["SAGEMAKER_PROGRAM"] == "featurizer.py"
    assert create["ResultPath"] == "$.model" and create["Retry"] and create["Catch"]


def test_the_model_package_describes_the_same_containers(definition):
    states = all_states(definition)
    deployed = states["Create model"]["Parameters"]["Containers"]
    spec = states["Register model package"]["Parameters"]["InferenceSpecification"]
    registered = spec["Containers"]
    def shape(container: dict) -> tuple:
        return tuple(container.get(k) or container.get(f"{k}.$") for k in ("ContainerHostname", "Image", "Environment"))

    assert [shape(c) for c in registered] == [shape(c) for c in deployed]
    assert [c["ModelDataUrl.$"] for c in registered] == [c["ModelDataUrl.$"] for c in deployed]
    assert "text/csv" in spec["SupportedContentTypes"] and "application/json" in spec["SupportedContentTypes"]


def test_preprocess_writes_the_featurizer_and_decoder_and_batch_transform_uses_the_pipeline(definition):
    states = all_states(definition)
    outputs = {o["OutputName"]: o["S3Output"] for o in states["Preprocess"]["Parameters"]["ProcessingOutputConfig"]["Outputs"]}
    assert outputs["featurizer"]["S3Uri.$"] == "$.plan.paths.featurizer"
    assert outputs["decoder"]["LocalPath"] == "/opt/ml/processing/output/decoder"
    transform = states["Batch transform"]["Parameters"]
    assert transform["ModelName.$"] == states["Create model"]["Parameters"]["ModelName.$"]
    assert transform["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri.$"] == "$.plan.paths.batch"


def test_the_scikit_learn_image_is_the_newest_the_sdk_lists():
    from sagemaker.core import image_uris

    from stacks.images import SKLEARN_VERSION

    listed = list(image_uris.config_for_framework("sklearn")["inference"]["versions"])
    newest = max(listed, key=lambda v: tuple(int(p) for p in v.split("-")[0].split(".")))
    assert SKLEARN_VERSION == newest.split("-py")[0]

"""Requests are checked against botocore's SageMaker model and rejected in SageMaker's words."""

from __future__ import annotations

import copy

import pytest
from botocore.validate import ParamValidator
from sm_testkit import ROLE, XGBOOST_IMAGE, training_request

from emulator.integrations.sagemaker import states_error
from emulator.services.sagemaker import exceptions as exc
from emulator.services.sagemaker.validation import operation_model, validate, validation_errors

CHANNELS = {"train": "s3://bucket/train/", "validation": "s3://bucket/validation/"}


def valid_training() -> dict:
    return training_request("train-abalone-01", CHANNELS)


def message(operation: str, request: dict) -> str:
    with pytest.raises(exc.ValidationException) as raised:
        validate(operation, request)
    return raised.value.message


def test_valid_requests_pass():
    validate("CreateTrainingJob", valid_training())
    validate("createTrainingJob", valid_training())  # Step Functions' camelCase action name
    validate("CreateModel", {"ModelName": "m-1", "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/m.tar.gz"}})
    validate("CreateEndpointConfig", {"EndpointConfigName": "c-1", "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m-1", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}]})


def test_integer_where_sagemaker_wants_a_string():
    request = valid_training()
    request["HyperParameters"]["num_round"] = 20
    assert message("CreateTrainingJob", request) == (
        "1 validation error detected: Value '20' at 'hyperParameters.num_round' failed to satisfy constraint: "
        "Member must be of type string (got int)"
    )


def test_missing_required_members_at_any_depth():
    request = valid_training()
    del request["RoleArn"]
    del request["OutputDataConfig"]["S3OutputPath"]
    text = message("CreateTrainingJob", request)
    assert text.startswith("2 validation errors detected: ")
    assert "Value null at 'roleArn' failed to satisfy constraint: Member must not be null" in text
    assert "Value null at 'outputDataConfig.s3OutputPath' failed to satisfy constraint: Member must not be null" in text


def test_enum_values_sagemaker_does_not_know():
    request = valid_training()
    request["AlgorithmSpecification"]["TrainingInputMode"] = "Files"
    request["ResourceConfig"]["InstanceType"] = "ml.m5.huge"
    text = message("CreateTrainingJob", request)
    assert "Value 'Files' at 'algorithmSpecification.trainingInputMode' failed to satisfy constraint: Member must satisfy enum value set: [Pipe, File, FastFile]" in text
    assert "Value 'ml.m5.huge' at 'resourceConfig.instanceType' failed to satisfy constraint: Member must satisfy enum value set: [" in text


def test_lengths_patterns_and_ranges():
    request = valid_training()
    request["TrainingJobName"] = "x" * 64
    request["StoppingCondition"]["MaxRuntimeInSeconds"] = 0
    text = message("CreateTrainingJob", request)
    assert "at 'trainingJobName' failed to satisfy constraint: Member must have length less than or equal to 63" in text
    assert "Value '0' at 'stoppingCondition.maxRuntimeInSeconds' failed to satisfy constraint: Member must have value greater than or equal to 1" in text

    request = valid_training()
    request["TrainingJobName"] = "train_abalone"
    assert "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}" in message("CreateTrainingJob", request)


def test_list_members_are_addressed_like_sagemaker_addresses_them():
    request = valid_training()
    request["InputDataConfig"][1]["ChannelName"] = ""
    request["InputDataConfig"][1]["DataSource"]["S3DataSource"]["S3DataType"] = "Folder"
    text = message("CreateTrainingJob", request)
    assert "Value '' at 'inputDataConfig.2.member.channelName' failed to satisfy constraint: Member must have length greater than or equal to 1" in text
    assert "at 'inputDataConfig.2.member.dataSource.s3DataSource.s3DataType' failed to satisfy constraint: Member must satisfy enum value set" in text


def test_unknown_members_are_rejected():
    request = valid_training()
    request["HyperParams"] = {}
    assert "Unknown parameter 'HyperParams'" in message("CreateTrainingJob", request)


def test_every_request_botocore_rejects_is_rejected_too():
    base = valid_training()
    broken = []
    for mutate in (
        lambda r: r.pop("TrainingJobName"),
        lambda r: r["ResourceConfig"].__setitem__("InstanceCount", "1"),
        lambda r: r.__setitem__("InputDataConfig", "s3://bucket/train/"),
        lambda r: r["AlgorithmSpecification"].__setitem__("TrainingImage", 7),
        lambda r: r.__setitem__("EnableNetworkIsolation", "yes"),
    ):
        request = copy.deepcopy(base)
        mutate(request)
        broken.append(request)
    shape = operation_model("CreateTrainingJob").input_shape
    for request in broken:
        assert ParamValidator().validate(request, shape).has_errors()
        assert validation_errors("CreateTrainingJob", request), request


def test_step_functions_error_names_and_causes():
    validation = exc.ValidationException("1 validation error detected: ...")
    optimized = states_error(validation)
    assert optimized.name == "SageMaker.AmazonSageMakerException"
    assert optimized.cause.startswith("1 validation error detected: ... (Service: AmazonSageMaker; Status Code: 400; Error Code: ValidationException; Request ID: ")
    assert optimized.cause.endswith("; Proxy: null)")
    sdk = states_error(validation, sdk=True)
    assert sdk.name == "SageMaker.SageMakerException"  # SDK v2 has no class for unmodelled codes
    assert sdk.cause.startswith("1 validation error detected: ... (Service: SageMaker, Status Code: 400, Request ID: ")
    assert states_error(exc.ThrottlingException()).name == "SageMaker.AmazonSageMakerException"
    assert states_error(exc.ThrottlingException(), sdk=True).name == "SageMaker.SageMakerException"
    for error in (exc.ResourceNotFound("x"), exc.ResourceInUse("x"), exc.ResourceLimitExceeded("x")):
        name = f"SageMaker.{error.code}Exception"
        assert states_error(error).name == name and states_error(error, sdk=True).name == name
    assert isinstance(exc.from_code("ThrottlingException"), exc.ThrottlingException)
    assert exc.from_code("ServiceUnavailable").status == 503

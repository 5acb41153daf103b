"""Physical names, ARNs and attributes of the resources a template declares, per resource type,
as CloudFormation would generate them (deterministic: the same template gives the same names)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from emulator.aws.arns import ACCOUNT
from emulator.cloud.errors import ResolutionError


def sanitize(name: str, *, lower: bool, max_len: int, allowed: str = r"[^A-Za-z0-9-]") -> str:
    cleaned = re.sub(allowed, "-", name)
    cleaned = re.sub("-+", "-", cleaned).strip("-")
    return (cleaned.lower() if lower else cleaned)[:max_len].strip("-")


# -- physical names and ARNs per resource type ------------------------------------------------
@dataclass(frozen=True)
class Kind:
    name_property: str | None
    arn: str
    ref: str = "name"  # what Ref returns: "name", "arn" or "url"
    lower: bool = False
    max_len: int = 64


KINDS: dict[str, Kind] = {
    "AWS::S3::Bucket": Kind("BucketName", "arn:aws:s3:::{name}", lower=True, max_len=63),
    "AWS::Lambda::Function": Kind("FunctionName", "arn:aws:lambda:{region}:{account}:function:{name}"),
    "AWS::StepFunctions::StateMachine": Kind(
        "StateMachineName", "arn:aws:states:{region}:{account}:stateMachine:{name}", ref="arn", max_len=80),
    "AWS::SNS::Topic": Kind("TopicName", "arn:aws:sns:{region}:{account}:{name}", ref="arn", max_len=256),
    "AWS::SQS::Queue": Kind("QueueName", "arn:aws:sqs:{region}:{account}:{name}", ref="url", max_len=80),
    "AWS::IAM::Role": Kind("RoleName", "arn:aws:iam::{account}:role/{name}"),
    "AWS::IAM::ManagedPolicy": Kind("ManagedPolicyName", "arn:aws:iam::{account}:policy/{name}", ref="arn"),
    "AWS::IAM::Policy": Kind("PolicyName", "arn:aws:iam::{account}:policy/{name}"),
    "AWS::IAM::InstanceProfile": Kind("InstanceProfileName", "arn:aws:iam::{account}:instance-profile/{name}"),
    "AWS::KMS::Key": Kind(None, "arn:aws:kms:{region}:{account}:key/{name}"),
    "AWS::KMS::Alias": Kind("AliasName", "arn:aws:kms:{region}:{account}:{name}"),
    "AWS::Logs::LogGroup": Kind("LogGroupName", "arn:aws:logs:{region}:{account}:log-group:{name}:*", max_len=512),
    "AWS::Events::Rule": Kind("Name", "arn:aws:events:{region}:{account}:rule/{name}"),
    "AWS::Events::EventBus": Kind("Name", "arn:aws:events:{region}:{account}:event-bus/{name}"),
    "AWS::CloudWatch::Alarm": Kind("AlarmName", "arn:aws:cloudwatch:{region}:{account}:alarm:{name}", max_len=255),
    "AWS::Lambda::LayerVersion": Kind("LayerName", "arn:aws:lambda:{region}:{account}:layer:{name}:1", ref="arn"),
    "AWS::Lambda::Alias": Kind("Name", "arn:aws:lambda:{region}:{account}:function:{name}", ref="arn"),
    "AWS::SageMaker::ModelPackageGroup": Kind(
        "ModelPackageGroupName", "arn:aws:sagemaker:{region}:{account}:model-package-group/{name}", ref="arn",
        max_len=63),
    "AWS::SageMaker::Model": Kind("ModelName", "arn:aws:sagemaker:{region}:{account}:model/{name}", ref="arn",
                                   max_len=63),
    "AWS::SageMaker::EndpointConfig": Kind(
        "EndpointConfigName", "arn:aws:sagemaker:{region}:{account}:endpoint-config/{name}", ref="arn", max_len=63),
    "AWS::SageMaker::Endpoint": Kind("EndpointName", "arn:aws:sagemaker:{region}:{account}:endpoint/{name}",
                                      ref="arn", max_len=63),
    "AWS::ECR::Repository": Kind("RepositoryName", "arn:aws:ecr:{region}:{account}:repository/{name}", lower=True),
    "AWS::SSM::Parameter": Kind("Name", "arn:aws:ssm:{region}:{account}:parameter/{name}"),
}


def physical_name(stack: Any, resource: Any) -> str:
    kind = KINDS.get(resource.type)
    where = f"{stack.name}/{resource.logical_id}"
    if kind and kind.name_property and kind.name_property in resource.properties:
        name = stack.resolve(resource.properties[kind.name_property], f"{where}/{kind.name_property}")
        if not isinstance(name, str):
            raise ResolutionError(where, f"{kind.name_property} is not a string: {name!r}")
        if resource.type == "AWS::SNS::Topic" and resource.properties.get("FifoTopic") and not name.endswith(".fifo"):
            name += ".fifo"
        return name
    if resource.type == "AWS::KMS::Key":
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"emulator:{stack.name}:{resource.logical_id}"))
    lower = kind.lower if kind else False
    max_len = kind.max_len if kind else 64
    generated = sanitize(f"{stack.name}-{resource.logical_id}", lower=lower, max_len=max_len)
    if resource.type == "AWS::Logs::LogGroup":
        return f"/aws/local/{generated}"
    if resource.type == "AWS::SNS::Topic" and resource.properties.get("FifoTopic"):
        generated = generated[: max_len - 5] + ".fifo"
    return generated


def extra_attributes(resource_type: str, name: str, arn: str, region: str) -> dict[str, str]:
    if resource_type == "AWS::S3::Bucket":
        return {
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{region}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{region}.amazonaws.com",
        }
    if resource_type == "AWS::StepFunctions::StateMachine":
        return {"StateMachineRevisionId": arn}
    if resource_type == "AWS::SNS::Topic":
        return {"TopicArn": arn, "TopicName": name}
    if resource_type == "AWS::SQS::Queue":
        return {"QueueName": name, "QueueUrl": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{name}"}
    if resource_type == "AWS::IAM::Role":
        return {"RoleId": "AROA" + uuid.uuid5(uuid.NAMESPACE_URL, arn).hex[:17].upper()}
    if resource_type == "AWS::KMS::Key":
        return {"KeyId": name}
    if resource_type == "AWS::SageMaker::ModelPackageGroup":
        return {"ModelPackageGroupArn": arn}
    if resource_type == "AWS::SageMaker::Model":
        return {"ModelName": name}
    if resource_type in ("AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint"):
        return {"EndpointConfigName": name, "EndpointName": name}
    if resource_type == "AWS::Lambda::LayerVersion":
        return {"LayerVersionArn": arn}
    if resource_type == "AWS::ECR::Repository":
        return {"RepositoryUri": f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{name}"}
    if resource_type == "AWS::SSM::Parameter":
        return {"Type": "String", "Value": name}
    return {}

"""The model registry: versioned model packages in groups, approval, listing; and the groups the
template declares, provisioned once by the runtime as CloudFormation would have at deploy time."""

from __future__ import annotations

import pytest
from sm_testkit import PROJECT_ROOT, XGBOOST_IMAGE

from emulator.services.sagemaker.exceptions import ValidationException


@pytest.fixture
def registry(backend):
    return backend.registry


def test_model_registry_versions_lists_and_approves(registry):
    group_arn = registry.create_model_package_group(ModelPackageGroupName="Abalone",
                                                   ModelPackageGroupDescription="abalone rings")["ModelPackageGroupArn"]
    assert group_arn == "arn:aws:sagemaker:us-east-1:000000000000:model-package-group/abalone"
    assert registry.describe_model_package_group(ModelPackageGroupName="Abalone")["ModelPackageGroupStatus"] == "Completed"
    with pytest.raises(ValidationException, match="already exists"):
        registry.create_model_package_group(ModelPackageGroupName="Abalone")
    spec = {"Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://bucket/m/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}
    first = registry.create_model_package(ModelPackageGroupName="Abalone", InferenceSpecification=spec,
                                         ModelApprovalStatus="Approved")["ModelPackageArn"]
    second = registry.create_model_package(ModelPackageGroupName=group_arn, InferenceSpecification=spec)["ModelPackageArn"]
    assert first.endswith(":model-package/abalone/1") and second.endswith(":model-package/abalone/2")
    described = registry.describe_model_package(ModelPackageName=second)
    assert described["ModelPackageVersion"] == 2 and described["ModelApprovalStatus"] == "PendingManualApproval"
    approved = registry.list_model_packages(ModelPackageGroupName="Abalone", ModelApprovalStatus="Approved")
    assert [p["ModelPackageVersion"] for p in approved["ModelPackageSummaryList"]] == [1]
    newest = registry.list_model_packages(ModelPackageGroupName="Abalone", SortOrder="Descending", MaxResults=1)
    assert newest["ModelPackageSummaryList"][0]["ModelPackageArn"] == second and "NextToken" in newest
    registry.update_model_package(ModelPackageArn=second, ModelApprovalStatus="Approved", ApprovalDescription="good")
    assert registry.describe_model_package(ModelPackageName=second)["ApprovalDescription"] == "good"
    with pytest.raises(ValidationException, match="does not exist"):
        registry.describe_model_package_group(ModelPackageGroupName="nope")
    with pytest.raises(ValidationException, match="does not exist"):
        registry.describe_model_package(ModelPackageName=first.replace("/1", "/9"))


def test_a_group_the_stack_declares_exists_without_a_create_call(tmp_path):
    from emulator.cloud.deployment import Deployment, ResourceRecord
    from emulator.runtime import Runtime

    deployment = Deployment(assembly_dir=str(tmp_path / "cdk.out"), state_dir=str(tmp_path / "state"), resources=[ResourceRecord(
        stack="MlPipeline", logical_id="ModelPackageGroup", type="AWS::SageMaker::ModelPackageGroup",
        physical_id="arn:aws:sagemaker:us-east-1:000000000000:model-package-group/ml-pipeline-models",
        arn="arn:aws:sagemaker:us-east-1:000000000000:model-package-group/ml-pipeline-models",
        properties={"ModelPackageGroupName": "ml-pipeline-models", "ModelPackageGroupDescription": "gated models"})])
    deployment.layout.check()  # as `deploy` leaves the folder: stamped, deployment recorded
    deployment.save()
    with Runtime.open(tmp_path / "state", PROJECT_ROOT, deployment=deployment, serve_s3=False) as runtime:
        arn = runtime.sagemaker.call("CreateModelPackage", {
            "ModelPackageGroupName": "ml-pipeline-models", "ModelApprovalStatus": "Approved",
            "InferenceSpecification": {"Containers": [{"Image": XGBOOST_IMAGE}], "SupportedContentTypes": ["text/csv"],
                                       "SupportedResponseMIMETypes": ["text/csv"]}})["ModelPackageArn"]
        assert arn.endswith(":model-package/ml-pipeline-models/1")
        group = runtime.sagemaker.call("DescribeModelPackageGroup", {"ModelPackageGroupName": "ml-pipeline-models"})
        assert group["ModelPackageGroupDescription"] == "gated models"
    # a second runtime over the same folder finds the group (and its package) there
    with Runtime.open(tmp_path / "state", PROJECT_ROOT, deployment=deployment, serve_s3=False) as again:
        listed = again.sagemaker.call("ListModelPackages", {"ModelPackageGroupName": "ml-pipeline-models"})
        assert [p["ModelPackageArn"] for p in listed["ModelPackageSummaryList"]] == [arn]

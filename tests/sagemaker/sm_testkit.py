"""Constants the SageMaker tests share (a plain module: conftest is not importable by name)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA = PROJECT_ROOT / "data"
ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def abalone_channels(s3, prefix: str = "s3://bucket/abalone", rows: int = 1200) -> dict[str, str]:
    """Label-first, header-less train/validation CSVs from data/abalone.csv (sex one-hot)."""
    lines = (DATA / "abalone.csv").read_text().splitlines()[1 : rows + 1]
    out = []
    for line in lines:
        cells = line.split(",")
        sex = [str(int(cells[0] == s)) for s in "MFI"]
        out.append(",".join([cells[-1], *sex, *cells[1:-1]]))
    cut = int(len(out) * 0.8)
    s3.put_bytes(f"{prefix}/train/train.csv", ("\n".join(out[:cut]) + "\n").encode())
    s3.put_bytes(f"{prefix}/validation/validation.csv", ("\n".join(out[cut:]) + "\n").encode())
    return {"train": f"{prefix}/train/", "validation": f"{prefix}/validation/"}


def channel(name: str, uri: str) -> dict:
    return {
        "ChannelName": name,
        "ContentType": "text/csv",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}},
    }


def training_request(name: str, channels: dict[str, str], hyperparameters: dict[str, str] | None = None, max_runtime: int = 300) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": hyperparameters or {"objective": "reg:squarederror", "num_round": "20", "max_depth": "4", "eta": "0.3"},
        "InputDataConfig": [channel(n, u) for n, u in channels.items()],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }

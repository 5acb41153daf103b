"""The training environment the scikit-learn image's toolkit builds: hyperparameters, SM_* variables, CLI args.

Written from sagemaker-training-toolkit's environment.py, mapping.py and params.py (the library the
image's ``train`` runs):

- hyperparameters.json values are JSON-decoded one by one (``"5"`` -> 5, ``"true"`` -> True,
  ``"\\"sqrt\\""`` -> "sqrt", ``"{\\"a\\": 1}"`` -> a dict); a value that does not parse stays the string.
- ``sagemaker_*`` names (and ``_tuning_objective_metric``) are the container's, never the script's;
  those the toolkit knows configure it (program, submit directory, log level, region, job name),
  the other ``sagemaker_*`` are "additional framework parameters".
- CLI args: the script's hyperparameters sorted by name, ``--name value`` (``-n`` for a one-letter
  name), values as ``str()`` (True -> "True", None -> ""), a dict as ``k=v,k2=v2``.
- Environment: ``SM_<KEY>`` for every entry of the toolkit's map, strings as they are, anything
  else JSON (sorted keys, no spaces), plus ``SM_CHANNEL_<NAME>`` and ``SM_HP_<NAME>``.
Paths are under the ML root (the job folder's ``ml/`` offline, /opt/ml in the image).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("sagemaker-training-toolkit")

SAGEMAKER_PREFIX = "sagemaker_"
PROGRAM = "sagemaker_program"
SUBMIT_DIRECTORY = "sagemaker_submit_directory"
LOG_LEVEL = "sagemaker_container_log_level"
REGION = "sagemaker_region"
JOB_NAME = "sagemaker_job_name"
S3_OUTPUT = "sagemaker_s3_output"
TUNING_OBJECTIVE = "_tuning_objective_metric"
# the toolkit's own parameters (params.SAGEMAKER_HYPERPARAMETERS); other sagemaker_* are framework parameters
SAGEMAKER_HYPERPARAMETERS = (PROGRAM, SUBMIT_DIRECTORY, "sagemaker_enable_cloudwatch_metrics", REGION, LOG_LEVEL,
                             JOB_NAME, "default_user_module_name", TUNING_OBJECTIVE, S3_OUTPUT)
# what the scikit-learn image sets as SAGEMAKER_TRAINING_MODULE (its Dockerfile)
FRAMEWORK_MODULE = "sagemaker_sklearn_container.training:main"
_DISTRIBUTION_FLAGS = ("sagemaker_mpi_enabled", "sagemaker_parameter_server_enabled",
                       "sagemaker_distributed_dataparallel_enabled", "sagemaker_pytorch_ddp_enabled",
                       "sagemaker_pytorch_xla_multi_worker_enabled", "sagemaker_multi_worker_mirrored_strategy_enabled",
                       "sagemaker_torch_distributed_enabled")


def decode_hyperparameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Each value JSON-decoded when it parses, kept as it is otherwise (environment.read_hyperparameters)."""
    decoded = {}
    for name, value in raw.items():
        try:
            decoded[name] = json.loads(value)
        except (ValueError, TypeError):
            decoded[name] = value
    return decoded


def split_hyperparameters(hyperparameters: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the script's, the container's): the container's are ``sagemaker_*`` and the toolkit's names."""
    container = {k: v for k, v in hyperparameters.items() if k in SAGEMAKER_HYPERPARAMETERS or k.startswith(SAGEMAKER_PREFIX)}
    return {k: v for k, v in hyperparameters.items() if k not in container}, container


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin1")
    return str(value)


def to_cmd_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """mapping.to_cmd_args: sorted names, ``--name value``."""
    args: list[str] = []
    for name in sorted(hyperparameters):
        text = _text(name)
        value = hyperparameters[name]
        args.append(f"--{text}" if len(text) > 1 else f"-{text}" if text else "")
        args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())) if isinstance(value, Mapping) else _text(value))
    return args


def to_env_vars(mapping: Mapping[str, Any]) -> dict[str, str]:
    """mapping.to_env_vars: ``SM_<KEY>``; strings as is, None empty, anything else compact sorted JSON."""
    def value(item: Any) -> str:
        if isinstance(item, bytes):
            return item.decode("latin1")
        if item is None:
            return ""
        if isinstance(item, str):
            return item
        return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    return {f"SM_{str(key).upper()}": value(item) for key, item in mapping.items() if key}


@dataclass(frozen=True)
class MlRoot:
    """The container's /opt/ml under any root."""

    root: Path

    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def config_dir(self) -> Path:
        return self.input_dir / "config"

    @property
    def data_dir(self) -> Path:
        return self.input_dir / "data"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def output_intermediate_dir(self) -> Path:
        return self.output_dir / "intermediate"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist: SageMaker writes it before the container starts") from None


def _module_name(program: str | None) -> str | None:
    return program[:-3] if program and program.endswith(".py") else program


@dataclass
class TrainingEnvironment:
    """environment.Environment: one read of the job's configuration (``from_root``)."""

    paths: MlRoot
    hyperparameters: dict[str, Any]  # the script's
    container_hyperparameters: dict[str, Any]  # sagemaker_* and the toolkit's names
    resource_config: dict[str, Any]
    input_data_config: dict[str, Any]
    environ: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_root(cls, root: Path, environ: Mapping[str, str] | None = None) -> TrainingEnvironment:
        paths = MlRoot(Path(root))
        raw = _read_json(paths.config_dir / "hyperparameters.json")
        if not isinstance(raw, dict):
            raise TypeError(f"{paths.config_dir / 'hyperparameters.json'} is not a JSON object of name: value")
        script, container = split_hyperparameters(decode_hyperparameters(raw))
        return cls(paths, script, container, _read_json(paths.config_dir / "resourceconfig.json"),
                   _read_json(paths.config_dir / "inputdataconfig.json"), dict(os.environ if environ is None else environ))

    # -- what the toolkit derives --------------------------------------------------------------
    @property
    def user_entry_point(self) -> str | None:
        return self.environ.get("SAGEMAKER_PROGRAM") or self.container_hyperparameters.get(PROGRAM)

    @property
    def module_name(self) -> str | None:
        return _module_name(self.user_entry_point)

    @property
    def module_dir(self) -> str:
        return str(self.container_hyperparameters.get(SUBMIT_DIRECTORY)
                   or self.environ.get("SAGEMAKER_SUBMIT_DIRECTORY") or self.paths.code_dir)

    @property
    def log_level(self) -> int:
        level = self.container_hyperparameters.get(LOG_LEVEL, self.environ.get("SAGEMAKER_CONTAINER_LOG_LEVEL", logging.INFO))
        try:
            return int(level)
        except (TypeError, ValueError):
            return logging.INFO

    @property
    def region(self) -> str:
        return str(self.container_hyperparameters.get(REGION) or self.environ.get("AWS_REGION")
                   or self.environ.get("AWS_DEFAULT_REGION") or "")

    @property
    def job_name(self) -> str | None:
        return self.environ.get("TRAINING_JOB_NAME")

    @property
    def additional_framework_parameters(self) -> dict[str, Any]:
        return {k: v for k, v in self.container_hyperparameters.items() if k not in SAGEMAKER_HYPERPARAMETERS}

    @property
    def hosts(self) -> list[str]:
        return list(self.resource_config["hosts"])

    @property
    def current_host(self) -> str:
        return self.resource_config["current_host"]

    @property
    def current_instance_group(self) -> str:
        return self.resource_config.get("current_group_name", "homogeneousCluster")

    @property
    def instance_groups_dict(self) -> dict[str, dict]:
        return {g["instance_group_name"]: g for g in self.resource_config.get("instance_groups", [])}

    @property
    def distribution_instance_groups(self) -> list[str]:
        framework = self.additional_framework_parameters
        if "sagemaker_distribution_instance_groups" in framework:
            return list(framework["sagemaker_distribution_instance_groups"])
        return [self.current_instance_group] if any(framework.get(flag) for flag in _DISTRIBUTION_FLAGS) else []

    @property
    def distribution_hosts(self) -> list[str]:
        groups = self.resource_config.get("instance_groups", [])
        if not groups:
            return self.hosts
        wanted = set(self.distribution_instance_groups)
        return [host for group in groups if group["instance_group_name"] in wanted for host in group["hosts"]]

    @property
    def channel_input_dirs(self) -> dict[str, str]:
        return {channel: str(self.paths.data_dir / channel) for channel in self.input_data_config}

    def training_env(self) -> dict[str, Any]:
        """dict(Environment): every property of the toolkit's environment (SM_TRAINING_ENV)."""
        groups = self.instance_groups_dict
        master = (self.distribution_hosts or self.hosts)[0]
        return {
            "additional_framework_parameters": self.additional_framework_parameters,
            "channel_input_dirs": self.channel_input_dirs,
            "current_host": self.current_host,
            "current_instance_group": self.current_instance_group,
            "current_instance_group_hosts": list(groups.get(self.current_instance_group, {}).get("hosts", [])),
            "current_instance_type": self.resource_config.get("current_instance_type", "local"),
            "distribution_hosts": self.distribution_hosts,
            "distribution_instance_groups": self.distribution_instance_groups,
            "framework_module": self.environ.get("SAGEMAKER_TRAINING_MODULE", FRAMEWORK_MODULE),
            "hosts": self.hosts,
            "hyperparameters": self.hyperparameters,
            "input_config_dir": str(self.paths.config_dir),
            "input_data_config": self.input_data_config,
            "input_dir": str(self.paths.input_dir),
            "instance_groups": list(groups),
            "instance_groups_dict": groups,
            "is_hetero": len(groups) > 1,
            "is_master": self.current_host == master,
            "is_modelparallel_enabled": None,
            "is_smddpmprun_installed": False,
            "is_smddprun_installed": False,
            "job_name": self.job_name,
            "log_level": self.log_level,
            "master_hostname": master,
            "model_dir": str(self.paths.model_dir),
            "module_dir": self.module_dir,
            "module_name": self.module_name,
            "network_interface_name": self.resource_config.get("network_interface_name", "eth0"),
            "num_cpus": multiprocessing.cpu_count(),
            "num_gpus": 0,  # the twin runs on CPUs only, as the scikit-learn image does
            "num_neurons": 0,
            "output_data_dir": str(self.paths.output_data_dir),
            "output_dir": str(self.paths.output_dir),
            "output_intermediate_dir": str(self.paths.output_intermediate_dir),
            "resource_config": self.resource_config,
            "topology": self.resource_config.get("topology", []),
            "user_entry_point": self.user_entry_point,
        }

    def to_cmd_args(self) -> list[str]:
        return to_cmd_args(self.hyperparameters)

    def to_env_vars(self) -> dict[str, str]:
        """Environment.to_env_vars: the SM_* variables the script runs with."""
        env = self.training_env()
        mapping: dict[str, Any] = {
            "hosts": env["hosts"],
            "network_interface_name": env["network_interface_name"],
            "hps": self.hyperparameters,
            "user_entry_point": env["user_entry_point"],
            "framework_params": env["additional_framework_parameters"],
            "resource_config": self.resource_config,
            "input_data_config": self.input_data_config,
            "output_data_dir": env["output_data_dir"],
            "channels": sorted(self.channel_input_dirs),
            "current_host": env["current_host"],
            "current_instance_type": env["current_instance_type"],
            "current_instance_group": env["current_instance_group"],
            "current_instance_group_hosts": env["current_instance_group_hosts"],
            "instance_groups": env["instance_groups"],
            "instance_groups_dict": env["instance_groups_dict"],
            "distribution_instance_groups": env["distribution_instance_groups"],
            "is_hetero": env["is_hetero"],
            "module_name": env["module_name"],
            "log_level": env["log_level"],
            "framework_module": env["framework_module"],
            "input_dir": env["input_dir"],
            "input_config_dir": env["input_config_dir"],
            "output_dir": env["output_dir"],
            "num_cpus": env["num_cpus"],
            "num_gpus": env["num_gpus"],
            "num_neurons": env["num_neurons"],
            "model_dir": env["model_dir"],
            "module_dir": env["module_dir"],
            "training_env": env,
            "user_args": self.to_cmd_args(),
            "output_intermediate_dir": env["output_intermediate_dir"],
        }
        if env["topology"]:
            mapping["topology"] = env["topology"]
        for name, path in self.channel_input_dirs.items():
            mapping[f"channel_{name}"] = path
        for name, value in self.hyperparameters.items():
            mapping[f"hp_{name}"] = value
        return to_env_vars(mapping)

    def process_env_vars(self) -> dict[str, str]:
        """What the toolkit sets in its own environment before it starts the script (environment.py)."""
        return {
            "SAGEMAKER_JOB_NAME": _text(self.container_hyperparameters.get(JOB_NAME, "")),
            "CURRENT_HOST": self.current_host,
            "SAGEMAKER_REGION": self.region,
        }

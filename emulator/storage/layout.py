"""Every path under the emulator's state folder (``.emulator/``), named once.

    FORMAT                          the on-disk format version (an older folder is refused, see check)
    deployment.json                 what `deploy` made of the cloud assembly
    s3/<bucket>/<key>               the buckets
    functions/<name>/, layers/<id>/ staged Lambda code
    lambda/invocations/<id>/        one Lambda invocation's event, response and log
    logs/                           Lambda logs of invocations outside an execution
    executions/<machine>/<name>/    an execution's status, history, output, redrive point and Lambda logs;
                                    its Map Runs under mapRuns/<run id>/ (storage/mapruns.py)
    outbox/<topic>.jsonl            messages published to SNS topics
    dead_letters/                   events EventBridge could not deliver
    sagemaker/<kind>/<name>.json    SageMaker resource records; sagemaker/work/<kind>/<name>/ job folders
    sagemaker/work/shared-inputs/   job inputs copied once when the bucket is on another filesystem
    sagemaker/invoke_server.json    the live `serve` process that answers InvokeEndpoint
    processes/groups/<pid>.json     the job, Lambda and trial process groups an emulator process runs
    stepfunctions/tokens/<id>.json  the task tokens of .waitForTaskToken states (any process answers them)
    cloudwatch/                     metric datapoints (metrics.sqlite) and alarm records
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Version 2: the layered emulator (one record store, tagged datetimes, sagemaker/work/ job folders).
FORMAT_VERSION = 2
FORMAT_FILE = "FORMAT"


class OldStateFolder(Exception):
    """The state folder was written by an older emulator whose on-disk format this one cannot read."""

    def __init__(self, root: Path, found: str):
        super().__init__(
            f"{root} was written by an older emulator (format {found}, this one reads {FORMAT_VERSION}). "
            f"Delete it (`rm -rf {root}` or `make clean`) and run again: it is rebuilt from cdk.out, "
            f"and a new run re-creates the models and endpoints.")


@dataclass(frozen=True)
class Layout:
    root: Path

    @classmethod
    def at(cls, root: Path | str) -> Layout:
        return cls(Path(root).resolve())

    # -- format ----------------------------------------------------------------------------
    def check(self) -> None:
        """Refuse a folder of an older format; stamp a new or empty one with this format."""
        stamp = self.root / FORMAT_FILE
        if stamp.is_file():
            found = stamp.read_text().strip()
            if found != str(FORMAT_VERSION):
                raise OldStateFolder(self.root, found)
            return
        # every folder an older emulator wrote has its deployment or execution records
        if (self.root / "deployment.json").is_file() or (self.root / "executions").is_dir():
            raise OldStateFolder(self.root, "1")
        self.root.mkdir(parents=True, exist_ok=True)
        stamp.write_text(f"{FORMAT_VERSION}\n")

    # -- files and folders -----------------------------------------------------------------
    @property
    def deployment_file(self) -> Path:
        return self.root / "deployment.json"

    @property
    def s3_root(self) -> Path:
        return self.root / "s3"

    def function_dir(self, name: str) -> Path:
        return self.root / "functions" / name

    def layer_dir(self, logical_id: str) -> Path:
        return self.root / "layers" / logical_id

    def lambda_invocation_dir(self, request_id: str) -> Path:
        return self.root / "lambda" / "invocations" / request_id

    @property
    def lambda_logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def executions_root(self) -> Path:
        return self.root / "executions"

    def executions_dir(self, state_machine_name: str) -> Path:
        return self.executions_root / state_machine_name

    def execution_dir(self, state_machine_name: str, execution_name: str) -> Path:
        return self.executions_dir(state_machine_name) / execution_name

    @property
    def outbox_dir(self) -> Path:
        return self.root / "outbox"

    def outbox_file(self, topic_name: str) -> Path:
        return self.outbox_dir / f"{topic_name}.jsonl"

    @property
    def dead_letters_dir(self) -> Path:
        return self.root / "dead_letters"

    @property
    def sagemaker_records(self) -> Path:
        return self.root / "sagemaker"

    def sagemaker_work_dir(self, kind: str, name: str) -> Path:
        return self.sagemaker_work_root / kind / name

    @property
    def sagemaker_work_root(self) -> Path:
        return self.root / "sagemaker" / "work"

    @property
    def shared_inputs_dir(self) -> Path:
        """Objects copied once for every job that reads them, when no hard link can reach the bucket."""
        return self.sagemaker_work_root / "shared-inputs"

    @property
    def stepfunctions_records(self) -> Path:
        return self.root / "stepfunctions"

    @property
    def cloudwatch_dir(self) -> Path:
        return self.root / "cloudwatch"

    @property
    def invoke_server_file(self) -> Path:
        return self.root / "sagemaker" / "invoke_server.json"

    @property
    def process_groups_dir(self) -> Path:
        return self.root / "processes"

"""CloudWatch Logs, read-only, over what the local jobs write: the log groups SageMaker writes on AWS
(``/aws/sagemaker/ProcessingJobs``, ``TrainingJobs``, ``TransformJobs``), one stream per job,
``<job name>/algo-1``, whose events are the lines of the job's ``logs/stdout.log`` then
``logs/stderr.log`` (a process's two pipes are kept apart on disk, so their interleaving is not
known; every line carries the file's last write time). DescribeLogGroups, DescribeLogStreams and
GetLogEvents answer in the API's shape, so ``aws logs get-log-events`` and boto3 read a job's log
as they would on AWS.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from emulator.services.errors import ServiceError
from emulator.storage.layout import Layout

log = logging.getLogger(__name__)

# log group -> the job kind's work folder (layout.sagemaker_work_dir)
GROUPS = {"/aws/sagemaker/ProcessingJobs": "processing-jobs", "/aws/sagemaker/TrainingJobs": "training-jobs",
          "/aws/sagemaker/TransformJobs": "transform-jobs"}
HOST = "algo-1"  # the one instance a local job runs on
MAX_EVENTS = 10_000  # GetLogEvents returns at most 10,000 events (1 MB) a call
FILES = ("stdout.log", "stderr.log")


class LogsError(ServiceError):
    code = "InvalidParameterException"


class InvalidParameterException(LogsError):
    code = "InvalidParameterException"


class ResourceNotFoundException(LogsError):
    code = "ResourceNotFoundException"


class UnknownOperation(LogsError):
    code = "UnknownOperationException"


class LogsBackend:
    OPERATIONS = ("DescribeLogGroups", "DescribeLogStreams", "GetLogEvents")

    def __init__(self, layout: Layout, region: str = "us-east-1", account: str = "000000000000"):
        self.layout, self.region, self.account = layout, region, account

    def call(self, operation: str, request: dict) -> dict:
        if operation not in self.OPERATIONS:
            raise UnknownOperation(f"The local CloudWatch Logs API does not serve {operation}; it serves: "
                                   f"{', '.join(self.OPERATIONS)} (the SageMaker job log groups)")
        method = getattr(self, "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_"))
        try:
            inspect.signature(method).bind(**request)
        except TypeError as error:  # a required field missing
            raise InvalidParameterException(f"{operation}: {error}") from None
        return method(**request)

    def _arn(self, group: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}:*"

    def _folder(self, group: str) -> Any:
        if group not in GROUPS:
            raise ResourceNotFoundException(f"The specified log group does not exist: {group!r} (the local ones "
                                            f"are {', '.join(GROUPS)})")
        return self.layout.sagemaker_work_root / GROUPS[group]

    def describe_log_groups(self, logGroupNamePrefix: str | None = None, **_: Any) -> dict:
        return {"logGroups": [{"logGroupName": group, "arn": self._arn(group), "creationTime": 0, "storedBytes": 0}
                              for group in GROUPS if not logGroupNamePrefix or group.startswith(logGroupNamePrefix)]}

    def describe_log_streams(self, logGroupName: str, logStreamNamePrefix: str | None = None,
                             orderBy: str = "LogStreamName", descending: bool = False, limit: int = 50,
                             nextToken: str | None = None, **_: Any) -> dict:
        folder = self._folder(logGroupName)
        if orderBy == "LastEventTime" and logStreamNamePrefix:
            raise InvalidParameterException("Cannot order by LastEventTime with a logStreamNamePrefix.")
        streams = []
        for job in sorted(folder.iterdir()) if folder.is_dir() else []:
            name = f"{job.name}/{HOST}"
            if logStreamNamePrefix and not name.startswith(logStreamNamePrefix.lower()):
                continue
            try:
                stats = [(job / "logs" / f).stat() for f in FILES if (job / "logs" / f).is_file()]
            except FileNotFoundError:  # retention removed the job's folder meanwhile
                continue
            if not stats:
                continue
            last = int(max(st.st_mtime for st in stats) * 1000)
            first = int(min(st.st_ctime for st in stats) * 1000)
            streams.append({"logStreamName": name, "creationTime": first, "firstEventTimestamp": first,
                            "lastEventTimestamp": last, "lastIngestionTime": last,
                            "arn": self._arn(logGroupName)[:-1] + f"log-stream:{name}",
                            "storedBytes": sum(st.st_size for st in stats)})
        key = (lambda s: s["lastEventTimestamp"]) if orderBy == "LastEventTime" else (lambda s: s["logStreamName"])
        streams.sort(key=key, reverse=bool(descending))
        start = int(nextToken) if nextToken and str(nextToken).isdigit() else 0
        page = streams[start:start + int(limit)]
        more = start + int(limit) < len(streams)
        return {"logStreams": page, **({"nextToken": str(start + int(limit))} if more else {})}

    def get_log_events(self, logGroupName: str, logStreamName: str, startFromHead: bool = False,
                       limit: int = MAX_EVENTS, nextToken: str | None = None, **_: Any) -> dict:
        """A page of the stream's events; without a token, the newest ``limit`` (or, startFromHead,
        the oldest). Tokens are ``f/<index>`` forward and ``b/<index>`` backward, as opaque as AWS's."""
        job, _, host = logStreamName.partition("/")
        folder = self._folder(logGroupName) / job.lower() / "logs"
        if host != HOST or not folder.is_dir():
            raise ResourceNotFoundException(f"The specified log stream does not exist: {logStreamName!r} in {logGroupName}")
        events = []
        for name in FILES:
            path = folder / name
            try:
                stamp = int(path.stat().st_mtime * 1000)
                text = path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:  # none written, or retention removed it
                continue
            events += [{"timestamp": stamp, "message": line, "ingestionTime": stamp} for line in text.splitlines()]
        limit = max(1, min(int(limit), MAX_EVENTS))
        if nextToken:
            direction, _, index = str(nextToken).partition("/")
            if direction not in ("f", "b") or not index.isdigit():
                raise InvalidParameterException(f"The specified nextToken is invalid: {nextToken!r}")
            at = int(index)
            start, end = (at, at + limit) if direction == "f" else (max(0, at - limit), at)
        elif startFromHead:
            start, end = 0, limit
        else:
            start, end = max(0, len(events) - limit), len(events)
        end = min(end, len(events))
        return {"events": events[start:end], "nextForwardToken": f"f/{end}", "nextBackwardToken": f"b/{start}"}

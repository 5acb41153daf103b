"""S3 through the AWS SDK integration: "aws-sdk:s3:<action>" over LocalS3; and the S3 calls of a
Distributed Map ("s3:getObject", "s3:listObjectsV2" for its ItemReader, "s3:putObject" for its
ResultWriter), which the interpreter makes through the same registry.

Supported actions: getObject, putObject, copyObject, headObject, deleteObject, listObjectsV2.
putObject and copyObject take S3's write conditions (``IfMatch``, ``IfNoneMatch: "*"``): a condition
that does not hold fails the task with ``S3.PreconditionFailedException`` (412), a concurrent
conditional write of the key with ``S3.ConditionalRequestConflictException`` (409).
Errors follow the SDK-integration naming rule: ``S3.<ErrorName>`` with the "Exception" suffix
always added (``S3.NoSuchKeyException``, ``S3.NoSuchBucketException``), and a cause in the Java
SDK's wording ("... (Service: S3, Status Code: 404, Request ID: ...)").
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from emulator.asl.errors import StatesError
from emulator.asl.ports import (
    Integration,
    Integrations,
    TaskOutcome,
    TaskRequest,
)
from emulator.services.s3.store import (
    LocalS3,
    NoSuchBucket,
    NoSuchKey,
    S3Error,
)

_STATUS = {"NoSuchKey": 404, "NoSuchBucket": 404, "InvalidURI": 400, "InvalidRequest": 400,
           "PreconditionFailed": 412, "ConditionalRequestConflict": 409, "NotImplemented": 501}
_MESSAGES = {
    "NoSuchKey": "The specified key does not exist.",
    "NoSuchBucket": "The specified bucket does not exist",
}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _fail(code: str, message: str | None = None) -> StatesError:
    status = _STATUS.get(code, 400)
    text = message or _MESSAGES.get(code, code)
    return StatesError(f"S3.{code}Exception",
                       f"{text} (Service: S3, Status Code: {status}, Request ID: {uuid.uuid4().hex[:16].upper()})")


def _need(params: Any, *names: str) -> None:
    missing = [n for n in names if not isinstance(params, dict) or n not in params]
    if missing:
        raise StatesError("States.Runtime", f"aws-sdk:s3 call is missing the required parameter(s) {missing}")


def _conditions(params: dict) -> dict[str, str | None]:
    return {"if_match": params.get("IfMatch"), "if_none_match": params.get("IfNoneMatch")}


class S3Sdk(Integration):
    def __init__(self, s3: LocalS3, action: str):
        self.s3 = s3
        self.action = action

    def start(self, request: TaskRequest) -> Any:
        handler = getattr(self, f"_{self.action}")
        try:
            return handler(request.parameters)
        except NoSuchKey:
            raise _fail("NoSuchKey") from None
        except NoSuchBucket:
            raise _fail("NoSuchBucket") from None
        except S3Error as exc:
            raise _fail(exc.code, str(exc)) from None

    def poll(self, handle: Any) -> TaskOutcome:
        return TaskOutcome(handle)

    def _head(self, uri: str) -> dict:
        head = self.s3.head(uri)
        return {
            "AcceptRanges": "bytes",
            "ContentLength": head["ContentLength"],
            "ContentType": "binary/octet-stream",
            "ETag": head["ETag"],
            "LastModified": _iso(head["LastModified"]),
            "Metadata": {},
        }

    def _getObject(self, params: dict) -> dict:
        _need(params, "Bucket", "Key")
        uri = LocalS3.uri(params["Bucket"], params["Key"])
        data = self.s3.get_bytes(uri)
        return {**self._head(uri), "Body": data.decode("utf-8", errors="replace")}

    def _headObject(self, params: dict) -> dict:
        _need(params, "Bucket", "Key")
        uri = LocalS3.uri(params["Bucket"], params["Key"])
        if not self.s3.exists(uri):
            self.s3.path(uri)  # NoSuchBucket first, as S3 answers
            # HEAD responses have no body: the SDK names the error but has no message.
            raise _fail("NoSuchKey", "null")
        return self._head(uri)

    def _putObject(self, params: dict) -> dict:
        _need(params, "Bucket", "Key")
        body = params.get("Body", "")
        if not isinstance(body, str):
            body = json.dumps(body, separators=(",", ":"))
        uri = LocalS3.uri(params["Bucket"], params["Key"])
        with self.s3.write_condition(uri, **_conditions(params)):
            self.s3.put_bytes(uri, body.encode("utf-8"))
        return {"ETag": self.s3.head(uri)["ETag"]}

    def _copyObject(self, params: dict) -> dict:
        _need(params, "Bucket", "Key", "CopySource")
        source = str(params["CopySource"]).split("?", 1)[0].lstrip("/")
        src_bucket, _, src_key = source.partition("/")
        dst = LocalS3.uri(params["Bucket"], params["Key"])
        with self.s3.write_condition(dst, **_conditions(params)):
            self.s3.copy(LocalS3.uri(src_bucket, src_key), dst)
        head = self.s3.head(dst)
        return {"CopyObjectResult": {"ETag": head["ETag"], "LastModified": _iso(head["LastModified"])}}

    def _deleteObject(self, params: dict) -> dict:
        _need(params, "Bucket", "Key")
        self.s3.delete(LocalS3.uri(params["Bucket"], params["Key"]))
        return {}

    def _listObjectsV2(self, params: dict) -> dict:
        _need(params, "Bucket")
        bucket, prefix = params["Bucket"], params.get("Prefix", "")
        max_keys = int(params.get("MaxKeys", 1000))
        keys = self.s3.list_keys(bucket, prefix)
        start = params.get("ContinuationToken") or params.get("StartAfter")
        if start:
            keys = [k for k in keys if k > start]
        page = keys[:max_keys]
        contents = []
        for key in page:
            head = self.s3.head(LocalS3.uri(bucket, key))
            contents.append({"Key": key, "Size": head["ContentLength"], "ETag": head["ETag"],
                             "LastModified": _iso(head["LastModified"]), "StorageClass": "STANDARD"})
        result = {"Name": bucket, "Prefix": prefix, "MaxKeys": max_keys, "KeyCount": len(page),
                  "IsTruncated": len(keys) > len(page), "Contents": contents}
        if len(keys) > len(page):
            result["NextContinuationToken"] = page[-1]
        return result


ACTIONS = ("getObject", "putObject", "copyObject", "headObject", "deleteObject", "listObjectsV2")


def register(integrations: Integrations, s3: LocalS3) -> None:
    for action in ACTIONS:
        integrations.register(f"aws-sdk:s3:{action}", S3Sdk(s3, action))


class MapRunS3(S3Sdk):
    """A Distributed Map's ItemReader/ResultWriter calls: the same actions, but getObject's Body is
    the object's bytes (an inventory's CSV files are gzipped) and never lands in a history."""

    def _getObject(self, params: dict) -> dict:
        _need(params, "Bucket", "Key")
        uri = LocalS3.uri(params["Bucket"], params["Key"])
        return {**self._head(uri), "Body": self.s3.get_bytes(uri)}


MAP_RUN_ACTIONS = ("getObject", "listObjectsV2", "putObject")


def register_map_run(integrations: Integrations, s3: LocalS3) -> None:
    """The resource keys of ItemReader (arn:aws:states:::s3:getObject / s3:listObjectsV2) and
    ResultWriter (arn:aws:states:::s3:putObject)."""
    for action in MAP_RUN_ACTIONS:
        integrations.register(f"s3:{action}", MapRunS3(s3, action))

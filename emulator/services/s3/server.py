"""A small S3 REST server over LocalS3, so unchanged handlers using ``boto3.client("s3")`` work.

Path-style addressing on 127.0.0.1 (port 0 by default). botocore sends requests here when the
process has ``AWS_ENDPOINT_URL_S3=http://127.0.0.1:<port>`` (service-specific endpoint variables,
botocore >= 1.31) and, because the host is an IP address, uses path style on its own.

Operations: ListBuckets, HeadBucket, CreateBucket, GetBucketLocation, ListObjects(V2), GetObject
(with Range), HeadObject, PutObject (plain and aws-chunked bodies), CopyObject, DeleteObject,
DeleteObjects and multipart uploads. Errors use S3's XML shapes (NoSuchKey, NoSuchBucket...).
Signatures are not checked: any dummy credentials work.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, quote, unquote, urlparse
from xml.etree import ElementTree

from emulator.services.s3.store import (
    KeyConflict,
    LocalS3,
    NoSuchBucket,
    NoSuchKey,
    S3Error,
    etag_of,
    valid_bucket_name,
)

log = logging.getLogger(__name__)

_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_HEX = re.compile(rb"^[0-9a-fA-F]{1,16}$")
MAX_BODY_BYTES = 5 * 1024**3  # S3's limit on a single PUT
# HTTP status of the S3 error codes that are not 400
_STATUS = {"PreconditionFailed": 412, "ConditionalRequestConflict": 409, "NotImplemented": 501}


class _S3Fault(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: str):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _xml(root: str, children: list[tuple[str, object]]) -> bytes:
    """Render a flat-ish XML document: children are (tag, text) or (tag, [nested children])."""
    def render(tag: str, value: object) -> str:
        if isinstance(value, list):
            return f"<{tag}>" + "".join(render(t, v) for t, v in value) + f"</{tag}>"
        text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f"<{tag}>{text}</{tag}>"

    body = "".join(render(t, v) for t, v in children)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{_NS}">{body}</{root}>'.encode()


def chunk_size(line: bytes) -> int:
    """The size on a chunk-size line (``<hex>[;extensions]``), or a 400 IncompleteBody."""
    text = line.split(b";", 1)[0].strip()
    if not _HEX.match(text):
        raise _S3Fault(400, "IncompleteBody", f"The chunk size {text[:40]!r} is not a hexadecimal number")
    return int(text, 16)


def decode_aws_chunked(data: bytes) -> bytes:
    """The payload of an aws-chunked body: ``<hex>[;chunk-signature=..]\\r\\n<data>\\r\\n ... 0\\r\\n``."""
    out = bytearray()
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise _S3Fault(400, "IncompleteBody", "The aws-chunked body ends before its last chunk")
        size = chunk_size(data[pos:end])
        pos = end + 2
        if size == 0:
            return bytes(out)
        out += data[pos:pos + size]
        pos += size + 2


class S3Server:
    """Run with ``start()``/``stop()`` or as a context manager; ``url`` is the endpoint URL."""

    def __init__(self, s3: LocalS3, host: str = "127.0.0.1", port: int = 0,
                 on_object_created: Callable[[str], None] | None = None):
        self.s3 = s3
        # S3 sends an "Object Created" event for every object written through its API; whoever
        # routes it (EventBridge, injected by the runtime) receives the object's URI here
        self.on_object_created = on_object_created
        self.uploads = s3.root / ".uploads"
        handler = type("BoundS3Handler", (_Handler,), {"store": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> S3Server:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="local-s3", daemon=True)
        self._thread.start()
        log.debug("S3 server on %s over %s", self.url, self.s3.root)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    store: S3Server
    protocol_version = "HTTP/1.1"
    server_version = "LocalS3"
    # a socket read that waits longer ends the connection: an idle or stalled client does not keep
    # a handler thread forever
    timeout = 60

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # -- dispatch --------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self.request_id = uuid.uuid4().hex[:16].upper()
        parsed = urlparse(self.path)
        self.query = {k: v[0] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
        bucket, _, key = unquote(parsed.path).lstrip("/").partition("/")
        self.bucket, self.key = bucket, key
        try:
            body = self._read_body() if method in ("PUT", "POST") else b""
            if bucket and not valid_bucket_name(bucket):
                # before any lookup: ".." or "%2e%2e" would otherwise name the state folder itself
                raise _S3Fault(400, "InvalidBucketName", "The specified bucket is not valid.", BucketName=bucket)
            if not bucket:
                return self._list_buckets()
            if not key:
                return self._bucket_operation(method, bucket, body)
            return self._object_operation(method, bucket, key, body)
        except _S3Fault as fault:
            self._error(fault)
        except NoSuchBucket:
            self._error(_S3Fault(404, "NoSuchBucket", "The specified bucket does not exist", BucketName=bucket))
        except NoSuchKey:
            self._error(_S3Fault(404, "NoSuchKey", "The specified key does not exist.", Key=key))
        except KeyConflict as exc:
            self._error(_S3Fault(400, "InvalidRequest", str(exc), Key=key))
        except S3Error as exc:
            self._error(_S3Fault(_STATUS.get(exc.code, 400), exc.code, str(exc)))
        except Exception as exc:  # a server bug answers 500 as S3 would, never a dropped socket
            log.exception("local S3 server: %s %s failed", method, self.path)
            self._error(_S3Fault(500, "InternalError", f"We encountered an internal error: {exc}"))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            while True:
                size = chunk_size(self.rfile.readline(1024))
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                if len(data) + size > MAX_BODY_BYTES:
                    raise _S3Fault(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
                data += self.rfile.read(size)
                self.rfile.readline(1024)
            body = bytes(data)
        else:
            text = self.headers.get("Content-Length") or "0"
            if not text.strip().isdigit():
                self.close_connection = True  # the rest of the stream cannot be framed
                raise _S3Fault(400, "InvalidArgument", f"Content-Length {text!r} is not a non-negative integer")
            length = int(text)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                raise _S3Fault(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
            body = self.rfile.read(length)
        streaming = self.headers.get("x-amz-content-sha256", "").startswith("STREAMING-")
        if streaming or "aws-chunked" in self.headers.get("Content-Encoding", ""):
            body = decode_aws_chunked(body)
        return body

    # -- responses -------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/xml") -> None:
        self.send_response(status)
        self.send_header("x-amz-request-id", self.request_id)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _error(self, fault: _S3Fault) -> None:
        children = [("Code", fault.code), ("Message", fault.message), *fault.extra.items(),
                    ("RequestId", self.request_id)]
        body = _xml("Error", children).replace(f' xmlns="{_NS}"'.encode(), b"")
        self._send(fault.status, b"" if self.command == "HEAD" else body)

    # -- service and bucket operations -----------------------------------------------------
    def _list_buckets(self) -> None:
        buckets = [("Bucket", [("Name", name), ("CreationDate", _iso((self.store.s3.root / name).stat().st_mtime))])
                   for name in self.store.s3.buckets()]
        self._send(200, _xml("ListAllMyBucketsResult", [
            ("Owner", [("ID", "local"), ("DisplayName", "local")]), ("Buckets", buckets)]))

    def _bucket_operation(self, method: str, bucket: str, body: bytes) -> None:
        s3 = self.store.s3
        if method == "PUT":
            s3.create_bucket(bucket)
            return self._send(200, headers={"Location": f"/{bucket}"})
        if not s3.bucket_exists(bucket):
            raise NoSuchBucket(bucket, s3.root)
        if method == "HEAD":
            return self._send(200, headers={"x-amz-bucket-region": s3.region})
        if method == "GET" and "location" in self.query:
            region = "" if s3.region == "us-east-1" else s3.region
            return self._send(200, _xml("LocationConstraint", []).replace(b"</LocationConstraint>",
                                                                         region.encode() + b"</LocationConstraint>"))
        if method == "GET":
            return self._list_objects(bucket)
        if method == "POST" and "delete" in self.query:
            return self._delete_objects(bucket, body)
        raise _S3Fault(501, "NotImplemented", f"{method} on a bucket with {sorted(self.query)} is not "
                                              f"supported by the local S3 server")

    def _list_objects(self, bucket: str) -> None:
        s3 = self.store.s3
        v2 = self.query.get("list-type") == "2"
        prefix = self.query.get("prefix", "")
        delimiter = self.query.get("delimiter", "")
        max_keys = int(self.query.get("max-keys", "1000"))
        url = self.query.get("encoding-type") == "url"
        if v2:
            start = self.query.get("continuation-token") or self.query.get("start-after", "")
        else:
            start = self.query.get("marker", "")

        def enc(text: str) -> str:
            return quote(text, safe="/") if url else text

        contents: list[tuple[str, object]] = []
        prefixes: list[str] = []
        truncated, last = False, ""
        for key in s3.list_keys(bucket, prefix):
            if start and key <= start:
                continue
            if delimiter and delimiter in key[len(prefix):]:
                common = prefix + key[len(prefix):].split(delimiter, 1)[0] + delimiter
                if common in prefixes or (start and common <= start):
                    continue
                entry: tuple[str, object] | None = None
                marker = common
            else:
                path = s3.path(LocalS3.uri(bucket, key))
                stat = path.stat()
                entry = ("Contents", [("Key", enc(key)), ("LastModified", _iso(stat.st_mtime)),
                                      ("ETag", _etag(path)), ("Size", stat.st_size),
                                      ("StorageClass", "STANDARD")])
                marker = key
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            if entry is None:
                prefixes.append(marker)
            else:
                contents.append(entry)
            last = marker
        children: list[tuple[str, object]] = [("Name", bucket), ("Prefix", enc(prefix))]
        if delimiter:
            children.append(("Delimiter", enc(delimiter)))
        children += [("MaxKeys", max_keys), ("IsTruncated", "true" if truncated else "false")]
        if url:
            children.append(("EncodingType", "url"))
        if v2:
            children.append(("KeyCount", len(contents) + len(prefixes)))
            if "continuation-token" in self.query:
                children.append(("ContinuationToken", self.query["continuation-token"]))
            if truncated:
                children.append(("NextContinuationToken", last))
        elif truncated:
            children.append(("NextMarker", enc(last)))
        children += contents
        children += [("CommonPrefixes", [("Prefix", enc(p))]) for p in prefixes]
        self._send(200, _xml("ListBucketResult", children))

    def _delete_objects(self, bucket: str, body: bytes) -> None:
        tree = ElementTree.fromstring(body)
        deleted = []
        for obj in tree.iter():
            if obj.tag.endswith("Object"):
                key = next(child.text for child in obj if child.tag.endswith("Key"))
                self.store.s3.delete(LocalS3.uri(bucket, key or ""))
                deleted.append(("Deleted", [("Key", key)]))
        self._send(200, _xml("DeleteResult", deleted))

    # -- object operations -----------------------------------------------------------------
    def _object_operation(self, method: str, bucket: str, key: str, body: bytes) -> None:
        s3 = self.store.s3
        uri = LocalS3.uri(bucket, key)
        if "uploadId" in self.query or "uploads" in self.query:
            return self._multipart(method, bucket, key, body)
        if method in ("GET", "HEAD"):
            return self._get_object(uri, head=method == "HEAD")
        if method == "PUT" and "x-amz-copy-source" in self.headers:
            source = unquote(self.headers["x-amz-copy-source"].split("?", 1)[0]).lstrip("/")
            src_bucket, _, src_key = source.partition("/")
            with s3.write_condition(uri, **self._conditions()):
                s3.copy(LocalS3.uri(src_bucket, src_key), uri)
            self._created(uri)
            path = s3.path(uri)
            return self._send(200, _xml("CopyObjectResult", [
                ("LastModified", _iso(path.stat().st_mtime)), ("ETag", _etag(path))]))
        if method == "PUT":
            with s3.write_condition(uri, **self._conditions()):
                s3.put_bytes(uri, body)
            self._created(uri)
            return self._send(200, headers={"ETag": f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'})
        if method == "DELETE":
            s3.delete(uri)
            return self._send(204)
        raise _S3Fault(501, "NotImplemented", f"{method} on an object is not supported by the local S3 server")

    def _conditions(self) -> dict[str, str | None]:
        """PutObject's and CopyObject's write conditions (S3's compare-and-swap)."""
        return {"if_match": self.headers.get("If-Match"), "if_none_match": self.headers.get("If-None-Match")}

    def _created(self, uri: str) -> None:
        if self.store.on_object_created is not None:
            try:
                self.store.on_object_created(uri)
            except Exception:
                log.exception("Object Created notification for %s failed", uri)

    def _get_object(self, uri: str, *, head: bool) -> None:
        s3 = self.store.s3
        path = s3.path(uri)
        if not s3.exists(uri):
            raise NoSuchKey(uri)
        stat = path.stat()
        headers = {
            "ETag": _etag(path),
            "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
            "Accept-Ranges": "bytes",
        }
        size = stat.st_size
        start, end, status = 0, size - 1, 200
        match = _RANGE.match(self.headers.get("Range", ""))
        if match and size:
            first, last = match.groups()
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            elif last:
                start, end = max(size - int(last), 0), size - 1
            if start >= size:
                raise _S3Fault(416, "InvalidRange", "The requested range is not satisfiable")
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(end - start + 1, 0)
        headers["Content-Length"] = str(length)
        content_type = "binary/octet-stream"
        if head:
            return self._send(status, headers=headers, content_type=content_type)
        with path.open("rb") as handle:
            handle.seek(start)
            data = handle.read(length)
        self._send(status, data, headers=headers, content_type=content_type)

    def _multipart(self, method: str, bucket: str, key: str, body: bytes) -> None:
        s3 = self.store.s3
        s3.path(LocalS3.uri(bucket, key))  # NoSuchBucket before any upload state is created
        if method == "POST" and "uploads" in self.query:
            upload_id = uuid.uuid4().hex
            (self.store.uploads / upload_id).mkdir(parents=True)
            return self._send(200, _xml("InitiateMultipartUploadResult", [
                ("Bucket", bucket), ("Key", key), ("UploadId", upload_id)]))
        upload_id = self.query["uploadId"]
        folder = self.store.uploads / Path(upload_id).name
        if not folder.is_dir():
            raise _S3Fault(404, "NoSuchUpload", "The specified upload does not exist.", UploadId=upload_id)
        if method == "PUT":
            number = int(self.query["partNumber"])
            (folder / f"{number:05d}").write_bytes(body)
            return self._send(200, headers={"ETag": f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'})
        if method == "DELETE":
            shutil.rmtree(folder, ignore_errors=True)
            return self._send(204)
        if method == "POST":
            assembled = folder / "assembled"
            with assembled.open("wb") as out:
                for part in sorted(p for p in folder.iterdir() if p.name.isdigit()):
                    out.write(part.read_bytes())
            s3.put_file(LocalS3.uri(bucket, key), assembled)
            shutil.rmtree(folder, ignore_errors=True)
            self._created(LocalS3.uri(bucket, key))
            etag = _etag(s3.path(LocalS3.uri(bucket, key)))
            return self._send(200, _xml("CompleteMultipartUploadResult", [
                ("Location", f"/{bucket}/{key}"), ("Bucket", bucket), ("Key", key), ("ETag", etag)]))
        raise _S3Fault(501, "NotImplemented", "unsupported multipart operation")


def _etag(path: Path) -> str:
    return etag_of(path)


def main(argv: list[str] | None = None) -> None:
    """``python -m emulator.services.s3.server ROOT [--port N]``: serve a LocalS3 folder until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = S3Server(LocalS3(args.root), port=args.port)
    print(f"AWS_ENDPOINT_URL_S3={server.url}", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

"""ETags are computed once, when an object is written, and kept in a hidden sidecar: no request
re-reads the object to answer; multipart objects get S3's multipart ETag form; copies are links."""

from __future__ import annotations

import hashlib
import io
import os

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from emulator.services.s3 import store as store_module
from emulator.services.s3.server import S3Server
from emulator.services.s3.store import META_PREFIX, InvalidS3Uri, LocalS3


def md5(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


@pytest.fixture
def s3(tmp_path):
    store = LocalS3(tmp_path / "s3")
    store.create_bucket("data")
    return store


@pytest.fixture
def client(s3):
    with S3Server(s3) as server:
        yield boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="x",
                           aws_secret_access_key="y", config=Config(retries={"max_attempts": 1}))


@pytest.fixture
def no_rehash(monkeypatch):
    """Any read of an object to hash it fails the test from here on."""
    def refuse(path):
        raise AssertionError(f"{path} was hashed again")
    monkeypatch.setattr(store_module, "etag_of", refuse)


def test_the_etag_is_kept_beside_the_object_and_never_listed(s3, tmp_path):
    source = tmp_path / "table.csv"
    source.write_bytes(b"a,b\n1,2\n")
    assert s3.put_bytes("s3://data/raw/x.json", b'{"a": 1}') == md5(b'{"a": 1}')
    assert s3.put_file("s3://data/raw/table.csv", source) == md5(b"a,b\n1,2\n")
    sidecars = sorted(p.name for p in (s3.root / "data" / "raw").iterdir() if p.name.startswith(META_PREFIX))
    assert sidecars == [f"{META_PREFIX}table.csv", f"{META_PREFIX}x.json"]
    assert s3.list("s3://data/") == ["s3://data/raw/table.csv", "s3://data/raw/x.json"]
    assert not s3.exists(f"s3://data/raw/{META_PREFIX}x.json")
    with pytest.raises(InvalidS3Uri, match="reserved"):
        s3.put_bytes(f"s3://data/raw/{META_PREFIX}y", b"no")
    s3.delete("s3://data/raw/x.json")
    assert not (s3.root / "data" / "raw" / f"{META_PREFIX}x.json").exists()


def test_requests_answer_from_the_sidecar(s3, client, no_rehash):
    s3.put_bytes("s3://data/k.bin", b"payload")  # put_bytes hashes the bytes it writes, not the file
    assert client.head_object(Bucket="data", Key="k.bin")["ETag"] == md5(b"payload")
    got = client.get_object(Bucket="data", Key="k.bin")
    assert got["ETag"] == md5(b"payload") and got["Body"].read() == b"payload"
    listed = client.list_objects_v2(Bucket="data")["Contents"]
    assert [(o["Key"], o["ETag"]) for o in listed] == [("k.bin", md5(b"payload"))]
    put = client.put_object(Bucket="data", Key="p.txt", Body=b"through the API")
    assert put["ETag"] == md5(b"through the API") == client.head_object(Bucket="data", Key="p.txt")["ETag"]


def test_a_file_replaced_behind_the_store_is_hashed_again_once(s3, monkeypatch):
    s3.put_bytes("s3://data/k.txt", b"old")
    path = s3.path("s3://data/k.txt")
    replacement = path.with_name("elsewhere")
    replacement.write_bytes(b"new!")
    os.replace(replacement, path)  # a new file: its inode differs from the sidecar's stamp
    assert s3.head("s3://data/k.txt")["ETag"] == md5(b"new!")
    monkeypatch.setattr(store_module, "etag_of", lambda p: pytest.fail("hashed twice"))
    assert s3.head("s3://data/k.txt")["ETag"] == md5(b"new!")


def test_multipart_objects_get_the_multipart_etag(s3, client):
    part = 5 * 1024 * 1024
    data = os.urandom(part) + os.urandom(part) + b"tail"
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part)
    client.upload_fileobj(io.BytesIO(data), "data", "big.bin", Config=config)
    parts = [data[:part], data[part:2 * part], data[2 * part:]]
    expected = '"' + hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + '-3"'
    assert client.head_object(Bucket="data", Key="big.bin")["ETag"] == expected
    assert s3.head("s3://data/big.bin")["ETag"] == expected
    assert s3.get_bytes("s3://data/big.bin") == data
    assert not list((s3.root / ".uploads").iterdir())


def test_copy_is_a_link_with_the_same_etag_and_replacing_one_key_leaves_the_other(s3, client):
    s3.put_bytes("s3://data/runs/e1/evaluation.json", b'{"auc": 0.9}')
    copied = client.copy_object(Bucket="data", Key="champion/evaluation.json", CopySource="data/runs/e1/evaluation.json")
    assert copied["CopyObjectResult"]["ETag"] == md5(b'{"auc": 0.9}')
    source, copy = s3.path("s3://data/runs/e1/evaluation.json"), s3.path("s3://data/champion/evaluation.json")
    assert os.path.samefile(source, copy)
    s3.put_bytes("s3://data/runs/e1/evaluation.json", b'{"auc": 0.5}')  # a write replaces the file
    assert s3.get_bytes("s3://data/champion/evaluation.json") == b'{"auc": 0.9}'
    s3.delete("s3://data/runs/e1/evaluation.json")
    assert s3.head("s3://data/champion/evaluation.json")["ETag"] == md5(b'{"auc": 0.9}')


def test_move_in_renames_and_a_key_conflict_promotes_nothing(s3, tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "a.csv").write_bytes(b"1\n")
    (out / "sub" / "b.csv").write_bytes(b"2\n")
    inode = (out / "a.csv").stat().st_ino
    assert s3.move_dir_in(out, "s3://data/runs/e1/") == ["s3://data/runs/e1/a.csv", "s3://data/runs/e1/sub/b.csv"]
    assert s3.path("s3://data/runs/e1/a.csv").stat().st_ino == inode and not (out / "a.csv").exists()
    assert s3.head("s3://data/runs/e1/sub/b.csv")["ETag"] == md5(b"2\n")
    # "c" is a folder in the bucket: the second file cannot land, so neither does the first
    (out / "b.csv").write_bytes(b"3\n")
    (out / "c").write_bytes(b"4\n")
    s3.put_bytes("s3://data/runs/e2/c/inner", b"x")
    with pytest.raises(Exception, match="c"):
        s3.move_dir_in(out, "s3://data/runs/e2/")
    assert s3.list("s3://data/runs/e2/") == ["s3://data/runs/e2/c/inner"]
    assert (out / "b.csv").exists()

"""LocalS3: addressing, atomic writes, listing and SageMaker S3Prefix downloads on a real folder."""

from __future__ import annotations

import pytest

from emulator.services.s3.store import (
    TEMP_PREFIX,
    InvalidS3Uri,
    KeyConflict,
    LocalS3,
    NoSuchBucket,
    NoSuchKey,
    parse_uri,
)


@pytest.fixture
def s3(tmp_path):
    store = LocalS3(tmp_path / "s3")
    store.create_bucket("data")
    return store


@pytest.mark.parametrize(
    "uri",
    [
        "s3://data/raw/a b.csv",
        "https://s3.us-east-1.amazonaws.com/data/raw/a%20b.csv",
        "https://s3.amazonaws.com/data/raw/a%20b.csv",
        "https://data.s3.us-east-1.amazonaws.com/raw/a%20b.csv",
        "https://data.s3.amazonaws.com/raw/a%20b.csv",
    ],
)
def test_every_uri_form_names_the_same_file(s3, uri):
    assert parse_uri(uri) == ("data", "raw/a b.csv")
    assert s3.path(uri) == s3.root / "data" / "raw" / "a b.csv"


def test_missing_bucket_and_key_are_named_errors(s3):
    with pytest.raises(NoSuchBucket, match="nobucket"):
        s3.path("s3://nobucket/k")
    with pytest.raises(NoSuchKey, match="s3://data/missing"):
        s3.get_bytes("s3://data/missing")
    assert not s3.exists("s3://data/missing")
    assert not s3.exists("s3://nobucket/k")


@pytest.mark.parametrize("uri", ["s3://data/../etc/passwd", "s3://data/a/../../x", "s3://../x", "ftp://data/x"])
def test_escapes_and_foreign_uris_are_rejected(s3, uri):
    with pytest.raises(InvalidS3Uri):
        s3.path(uri)


def test_put_get_head_round_trip(s3, tmp_path):
    s3.put_bytes("s3://data/a/b/c.txt", b"hello")
    assert s3.get_bytes("s3://data/a/b/c.txt") == b"hello"
    head = s3.head("s3://data/a/b/c.txt")
    assert head["ContentLength"] == 5
    assert head["ETag"] == '"5d41402abc4b2a76b9719d911017c592"'
    assert head["LastModified"].tzinfo is not None
    src = tmp_path / "src.bin"
    src.write_bytes(b"\x00" * 10)
    s3.put_file("s3://data/copy.bin", src)
    assert s3.head("s3://data/copy.bin")["ContentLength"] == 10


def test_key_that_is_also_a_prefix_is_a_named_conflict(s3):
    s3.put_bytes("s3://data/a/b", b"1")
    with pytest.raises(KeyConflict):
        s3.put_bytes("s3://data/a", b"2")
    with pytest.raises(KeyConflict):
        s3.put_bytes("s3://data/a/b/c", b"3")


def test_temp_files_are_invisible(s3):
    s3.put_bytes("s3://data/p/real.csv", b"x")
    (s3.root / "data" / "p" / f"{TEMP_PREFIX}half").write_bytes(b"partial")
    assert s3.list("s3://data/p/") == ["s3://data/p/real.csv"]
    assert not s3.exists(f"s3://data/p/{TEMP_PREFIX}half")


def test_list_is_sorted_and_prefix_is_a_string_prefix(s3):
    for key in ["raw/b.csv", "raw/a.csv", "raw2/c.csv", "raw/sub/d.csv", "other.txt"]:
        s3.put_bytes(f"s3://data/{key}", b"x")
    assert s3.list("s3://data/raw") == [
        "s3://data/raw/a.csv",
        "s3://data/raw/b.csv",
        "s3://data/raw/sub/d.csv",
        "s3://data/raw2/c.csv",
    ]
    assert s3.list("s3://data/raw/") == ["s3://data/raw/a.csv", "s3://data/raw/b.csv", "s3://data/raw/sub/d.csv"]
    assert s3.list("s3://data/nothing/") == []
    assert len(s3.list("s3://data")) == 5


def test_download_prefix_follows_sagemaker_s3prefix(s3, tmp_path):
    for key in ["d/train/part1.csv", "d/train/sub/part2.csv", "d/train.csv", "d/validation/v.csv"]:
        s3.put_bytes(f"s3://data/{key}", key.encode())
    folder = s3.download_prefix("s3://data/d/train/", tmp_path / "a")
    assert sorted(p.relative_to(tmp_path / "a").as_posix() for p in folder) == ["part1.csv", "sub/part2.csv"]
    loose = s3.download_prefix("s3://data/d/train", tmp_path / "b")
    assert sorted(p.relative_to(tmp_path / "b").as_posix() for p in loose) == [
        "train.csv",
        "train/part1.csv",
        "train/sub/part2.csv",
    ]
    exact = s3.download_prefix("s3://data/d/validation/v.csv", tmp_path / "c")
    assert [p.read_bytes() for p in exact] == [b"d/validation/v.csv"]


def test_upload_dir_keeps_relative_paths(s3, tmp_path):
    src = tmp_path / "out"
    (src / "nested").mkdir(parents=True)
    (src / "model.tar.gz").write_bytes(b"m")
    (src / "nested" / "x.json").write_bytes(b"{}")
    uris = s3.upload_dir(src, "s3://data/jobs/j1/output")
    assert uris == ["s3://data/jobs/j1/output/model.tar.gz", "s3://data/jobs/j1/output/nested/x.json"]
    assert s3.get_bytes("s3://data/jobs/j1/output/nested/x.json") == b"{}"


def test_delete_prunes_empty_folders(s3):
    s3.put_bytes("s3://data/x/y/z.txt", b"1")
    s3.delete("s3://data/x/y/z.txt")
    s3.delete("s3://data/x/y/z.txt")  # absent: no error, as S3
    assert not (s3.root / "data" / "x").exists()
    assert s3.bucket_exists("data")

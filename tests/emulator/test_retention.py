"""The retention policy on real folders: which executions a prune picks, what a finished job's folder
keeps, and that hard-linked inputs are not counted as bytes given back."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from emulator.storage.layout import Layout
from emulator.storage.retention import (
    choose_prunable,
    disk_bytes,
    list_executions,
    prune_shared_inputs,
    scrub_job_folder,
)

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def record(layout: Layout, machine: str, name: str, status: str, days_ago: float) -> None:
    folder = layout.execution_dir(machine, name)
    folder.mkdir(parents=True)
    start = NOW - dt.timedelta(days=days_ago)
    status_record = {"name": name, "status": status, "startDate": start.isoformat()}
    if status != "RUNNING":
        status_record["stopDate"] = (start + dt.timedelta(minutes=5)).isoformat()
    (folder / "status.json").write_text(json.dumps(status_record))


@pytest.fixture
def layout(tmp_path):
    return Layout.at(tmp_path / "state")


def names(entries) -> list[str]:
    return sorted(f"{e.machine}/{e.name}" for e in entries)


def test_keep_the_newest_per_state_machine_never_a_running_one(layout):
    for i, status in enumerate(["SUCCEEDED", "FAILED", "RUNNING", "SUCCEEDED", "SUCCEEDED"]):
        record(layout, "Train", f"t{i}", status, days_ago=i)  # t0 newest
    record(layout, "Infer", "i0", "SUCCEEDED", days_ago=30)
    executions = list_executions(layout)
    assert [e.name for e in executions if e.machine == "Train"] == ["t0", "t1", "t2", "t3", "t4"]
    assert names(choose_prunable(executions, keep=2, now=NOW)) == ["Train/t3", "Train/t4"]  # t2 runs
    assert names(choose_prunable(executions, keep=0, now=NOW)) == ["Infer/i0", "Train/t0", "Train/t1", "Train/t3", "Train/t4"]
    older = choose_prunable(executions, keep=0, older_than=dt.timedelta(days=3.5), now=NOW)
    assert names(older) == ["Infer/i0", "Train/t4"]
    with pytest.raises(ValueError):
        choose_prunable(executions, keep=-1)


def test_a_finished_job_folder_keeps_logs_and_config_and_drops_data(tmp_path):
    job = tmp_path / "job"
    bucket_object = tmp_path / "bucket" / "train.csv"
    bucket_object.parent.mkdir()
    bucket_object.write_bytes(b"1,2\n" * 5000)
    files = {
        "logs/stdout.log": b"[0] validation-auc:0.9\n", "logs/emulator.log": b"linked\n",
        "ml/input/config/hyperparameters.json": b"{}", "ml/output/failure": b"",
        "ml/model/xgboost-model": b"m" * 9000, "ml/output/data/extra.bin": b"x" * 9000,
    }
    for relative, data in files.items():
        (job / relative).parent.mkdir(parents=True, exist_ok=True)
        (job / relative).write_bytes(data)
    (job / "ml/input/data/train").mkdir(parents=True)
    os.link(bucket_object, job / "ml/input/data/train/train.csv")
    data_bytes = sum((job / f).stat().st_blocks * 512 for f in ("ml/model/xgboost-model", "ml/output/data/extra.bin"))
    freed = scrub_job_folder(job)
    left = sorted(p.relative_to(job).as_posix() for p in job.rglob("*") if p.is_file())
    assert left == ["logs/emulator.log", "logs/stdout.log", "ml/input/config/hyperparameters.json", "ml/output/failure"]
    assert freed == data_bytes > 0  # the model and the output data; the input link gives nothing back
    assert bucket_object.read_bytes() == b"1,2\n" * 5000


def test_a_failed_job_keeps_its_unpromoted_outputs(tmp_path):
    job = tmp_path / "job"
    (job / "ml/processing/output").mkdir(parents=True)
    (job / "ml/processing/output/train.csv").write_text("partial")
    (job / "ml/processing/input/data").mkdir(parents=True)
    (job / "ml/processing/input/data/raw.csv").write_text("copy")
    scrub_job_folder(job, keep_also=["ml/processing/output"])
    assert (job / "ml/processing/output/train.csv").read_text() == "partial"
    assert not (job / "ml/processing/input").exists()


def test_shared_input_copies_go_once_no_job_links_them(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "a").write_bytes(b"a" * 5000)
    (shared / "b").write_bytes(b"b" * 5000)
    os.link(shared / "b", tmp_path / "still-linked")
    size_of_a = (shared / "a").stat().st_blocks * 512
    assert prune_shared_inputs(shared) == size_of_a
    assert sorted(p.name for p in shared.iterdir()) == ["b"]


def test_disk_bytes_counts_a_hard_linked_file_once(tmp_path):
    (tmp_path / "a").write_bytes(b"z" * 10000)
    os.link(tmp_path / "a", tmp_path / "b")
    assert disk_bytes([tmp_path]) == (tmp_path / "a").stat().st_blocks * 512 > 0
    assert disk_bytes([tmp_path], only_unlinked=True) == 0


def test_clean_command_prunes_and_says_what_it_did(tmp_path, capsys):
    from emulator.cli import main as cli

    layout = Layout.at(tmp_path / "state")
    layout.check()
    now = dt.datetime.now(dt.UTC)
    for i, status in enumerate(["SUCCEEDED", "RUNNING", "FAILED", "SUCCEEDED"]):
        record(layout, "Train", f"t{i}", status, days_ago=(NOW - now).total_seconds() / 86400 + i)
    args = ["--state-dir", str(layout.root), "clean", "--keep", "1"]
    assert cli.main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove 2 execution(s)" in out and layout.execution_dir("Train", "t3").is_dir()
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "kept 2 execution(s)" in out and "1 running" in out and "removed 2 execution(s)" in out
    assert sorted(p.name for p in layout.executions_dir("Train").iterdir()) == ["t0", "t1"]
    assert cli.main([*args[:2], "clean", "--keep", "-1"]) == 2
    assert "--keep -1" in capsys.readouterr().err

"""The run summary's peak memory per stage: read from each job's logs/resources.json (written by the
SageMaker backend from wait4 when the job's processes end), one line per stage, trials folded."""

from __future__ import annotations

import os

from emulator.app.summary import memory_lines
from emulator.services.sagemaker import cluster
from emulator.storage.layout import Layout

MIB = 2**20


def test_each_stage_of_the_run_with_its_hosts_peak(tmp_path):
    layout = Layout.at(tmp_path / "state")
    jobs = [("processing-jobs", "run-1a2b3c4d-prep-stats", {"algo-1": 300 * MIB, "algo-2": 310 * MIB}),
            ("processing-jobs", "run-1a2b3c4d-prep", {"algo-1": 120 * MIB}),
            ("training-jobs", "run-1a2b3c4d-training", {"algo-1": 800 * MIB, "algo-2": 790 * MIB}),
            ("training-jobs", "run-1a2b3c-1a2b3c4d-tuning-001-ff00", {"algo-1": 500 * MIB}),
            ("training-jobs", "run-1a2b3c-1a2b3c4d-tuning-002-ff01", {"algo-1": 520 * MIB}),
            ("processing-jobs", "other-99999999-prep", {"algo-1": 1 * MIB})]  # another execution's
    for when, (kind, name, peaks) in enumerate(jobs):
        logs = layout.sagemaker_work_dir(kind, name) / "logs"
        cluster.write_resources(logs, peaks)
        os.utime(logs / cluster.RESOURCES_FILE, (1000 + when, 1000 + when))
    lines = memory_lines(layout, "run-1a2b3c4d-model")
    assert lines[0].split() == ["peak", "memory", "processing", "prep-stats", "algo-1", "300", "MiB,", "algo-2", "310", "MiB"]
    assert "processing prep " in lines[1] and "training training" in lines[2] and "800 MiB" in lines[2]
    assert lines[3].split()[-5:] == ["2", "process(es),", "largest", "520", "MiB"]
    assert len(lines) == 4 and not any("other" in line for line in lines)
    assert memory_lines(layout, None) == []

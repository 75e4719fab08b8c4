"""The local cluster launcher, with tiny Python workers instead of trainings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from training.cluster import free_ports, tf_config

REPO = Path(__file__).resolve().parents[1]


def _launch(workers: int, script: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "training.cluster",
            "--workers",
            str(workers),
            "--",
            sys.executable,
            "-c",
            script,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_tf_config_names_every_worker_and_this_ones_index():
    ports = free_ports(3)
    assert len(set(ports)) == 3
    config = json.loads(tf_config(ports, 2))
    assert config["cluster"]["worker"] == [f"localhost:{p}" for p in ports]
    assert config["task"] == {"type": "worker", "index": 2}


@pytest.mark.slow
def test_each_worker_gets_its_own_tf_config_and_prefixed_output():
    result = _launch(
        3, "import json, os; c = json.loads(os.environ['TF_CONFIG']); print(c['task']['index'], c['cluster'])"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for i in range(3):
        (line,) = [x for x in lines if x.startswith(f"[worker {i}] ")]
        assert line.split()[2] == str(i)
    clusters = {line.split(" ", 3)[3] for line in lines}
    assert len(clusters) == 1  # all three describe the same cluster


@pytest.mark.slow
def test_one_failing_worker_stops_the_others_and_sets_the_exit_code():
    script = (
        "import json, os, sys, time\n"
        "if json.loads(os.environ['TF_CONFIG'])['task']['index'] == 1:\n"
        "    sys.exit(3)\n"
        "time.sleep(120)\n"
    )
    result = _launch(2, script, timeout=60)  # the sleeping worker must be stopped, not waited for
    assert result.returncode == 3
    assert "worker 1 exited with 3" in result.stdout


def test_a_missing_command_is_a_usage_error():
    from training import cluster

    with pytest.raises(SystemExit) as error:
        cluster.main(["--workers", "2"])
    assert error.value.code == 2

"""The Procfile: every process a Heroku-like host runs is in production mode unless told not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROCESSES = dict(
    line.split(": ", 1)
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
)


def run_process(command: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a Procfile command through a shell as the host does, with `bot` and `gunicorn`
    replaced by stand-ins that print the TEND_ENV they were started with."""
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for name in ("bot", "gunicorn"):
        stub = stubs / name
        stub.write_text('#!/bin/sh\necho "TEND_ENV=$TEND_ENV"\n', encoding="utf-8")
        stub.chmod(0o755)
    path = f"{stubs}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["/bin/sh", "-c", command], env={"PATH": path, "PORT": "5000", **env},
        capture_output=True, text=True, timeout=10,
    )


def test_the_procfile_declares_the_processes_readme_names():
    assert set(PROCESSES) == {"release", "web", "worker", "dispatcher"}


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_each_process_runs_in_production_unless_told_otherwise(process: str, tmp_path: Path):
    command = PROCESSES[process]
    assert run_process(command, tmp_path).stdout == "TEND_ENV=production\n"
    assert run_process(command, tmp_path, TEND_ENV="").stdout == "TEND_ENV=production\n"
    told = run_process(command, tmp_path, TEND_ENV="development")
    assert told.stdout == "TEND_ENV=development\n"


def test_the_release_phase_refuses_an_unconfigured_host_naming_every_missing_setting(
    tmp_path: Path,
):
    # The real `bot`, on a host where nothing has been configured yet.
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TEND_INSTANCE_DIR": str(tmp_path / "instance"),
    }
    result = subprocess.run(
        ["/bin/sh", "-c", PROCESSES["release"]], env=env, capture_output=True, text=True,
        timeout=60, cwd=tmp_path,
    )
    assert result.returncode != 0
    [refusal] = [line for line in result.stderr.splitlines() if "refuses to start" in line]
    for name in ("SECRET_KEY", "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "PUBLIC_BASE_URL",
                 "REDIS_URL", "DATABASE_URL"):
        assert name in refusal
    assert not (tmp_path / "instance").exists()

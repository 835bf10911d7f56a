"""Every command README documents runs after the quick start's install (`pip install -e .`).

TEND_QUICKSTART_VENV names a virtualenv that holds only that install (CI makes one); without it,
the `bot` next to this interpreter is used.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
QUICKSTART_VENV = os.environ.get("TEND_QUICKSTART_VENV", "")
BIN = Path(QUICKSTART_VENV) / "bin" if QUICKSTART_VENV else Path(sys.executable).parent
# What a shell passes on; nothing that could point the command at this test run's packages.
PASSED_ON = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


def documented_commands() -> dict[str, list[str]]:
    """Each command in README's Commands table ("export decisions"), with the options it shows."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    commands: dict[str, list[str]] = {}
    for row in section.splitlines():
        cells = row.split("|")
        if len(cells) < 3 or "`bot" not in cells[1]:
            continue
        for usage in re.findall(r"`bot ([^`]*)`", cells[1]):
            words = []
            for word in usage.split():
                if not re.fullmatch(r"[a-z][a-z-]*", word):
                    break
                words.append(word)
            commands[" ".join(words)] = re.findall(r"--[a-z][a-z-]*", usage)
    return commands


COMMANDS = documented_commands()


def bot(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {name: os.environ[name] for name in PASSED_ON if name in os.environ}
    return subprocess.run(
        [str(BIN / "bot"), *args], cwd=cwd, env={**base, **env}, capture_output=True,
        text=True, timeout=120,
    )


def test_the_readme_documents_the_commands_this_test_runs():
    assert {"run", "check", "simulate", "export decisions", "sandbox"} <= set(COMMANDS)
    assert {"--program", "--persona", "--days"} <= set(COMMANDS["simulate"])


@pytest.mark.skipif(not QUICKSTART_VENV, reason="TEND_QUICKSTART_VENV is not set")
def test_the_quickstart_virtualenv_holds_the_quick_start_install_only():
    found = subprocess.run(
        [str(BIN / "python"), "-c", "import pytest"], capture_output=True, text=True
    )
    assert found.returncode != 0, f"{QUICKSTART_VENV} has the test extra installed"


# `bot COMMAND --help` for each command, in one process of the same virtualenv: a process each
# would spend most of its time importing the same modules.
HELP_ALL = """
import json, sys
from click.testing import CliRunner
from bot.tools.cli import main
runner = CliRunner()
runs = {n: runner.invoke(main, [*n.split(), "--help"], prog_name="bot") for n in sys.argv[1:]}
print(json.dumps({name: [run.exit_code, run.output] for name, run in runs.items()}))
"""


@pytest.fixture(scope="module")
def helps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """Exit code and output of `bot COMMAND --help` for every documented command."""
    folder = tmp_path_factory.mktemp("help")
    env = {name: os.environ[name] for name in PASSED_ON if name in os.environ}
    result = subprocess.run(
        [str(BIN / "python"), "-c", HELP_ALL, *COMMANDS], cwd=folder, capture_output=True,
        text=True, timeout=120, env={**env, "TEND_INSTANCE_DIR": str(folder / "instance")},
    )
    assert result.returncode == 0, result.stderr
    return {name: (code, output) for name, (code, output) in json.loads(result.stdout).items()}


def test_the_bot_executable_lists_every_documented_command(tmp_path: Path):
    result = bot("--help", cwd=tmp_path, TEND_INSTANCE_DIR=str(tmp_path / "instance"))
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^  ([a-z][a-z-]*)  ", result.stdout, flags=re.MULTILINE))
    assert {name.split()[0] for name in COMMANDS} <= listed


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_documented_command_and_option_exists(helps, command: str):
    code, output = helps[command]
    assert code == 0, output
    assert f"Usage: bot {command}" in output
    for option in COMMANDS[command]:
        assert option in output, f"README shows bot {command} {option}; its --help does not"


@pytest.fixture(scope="module")
def invocations(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    """Commands that need nothing but files, on embedded defaults, run side by side."""
    folder = tmp_path_factory.mktemp("quickstart")
    env = {"TEND_INSTANCE_DIR": str(folder / "instance")}
    database = f"sqlite:///{folder / 'migrated' / 'tend.sqlite3'}"
    argvs = {
        "check": ["check"],
        "simulate": ["simulate", "--program", "daily-checkin", "--persona", "engaged",
                     "--days", "2"],
        "migrate": ["migrate"],
    }
    extra = {"migrate": {"DATABASE_URL": database}}
    with ThreadPoolExecutor(max_workers=len(argvs)) as pool:
        runs = {
            name: pool.submit(bot, *argv, cwd=folder, **env, **extra.get(name, {}))
            for name, argv in argvs.items()
        }
        yield {name: run.result() for name, run in runs.items()}


def test_bot_check_validates_the_shipped_programs(invocations):
    result = invocations["check"]
    assert result.returncode == 0, result.stderr
    assert "all programs are valid" in result.stdout


def test_bot_simulate_runs_a_participant_on_the_virtual_clock(invocations):
    result = invocations["simulate"]
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["participants"] == 1 and figures["errors"] == 0
    assert figures["messages"] >= 3


def test_bot_migrate_creates_a_local_database(invocations):
    result = invocations["migrate"]
    assert result.returncode == 0, result.stderr
    assert "database is up to date" in result.stdout

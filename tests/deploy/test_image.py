"""The container image, as far as it can be proven without a Docker engine: the Dockerfile
passes hadolint, its build context holds every package the wheel needs, and the install it
performs (wheels built from the copied sources, installed with no index into a fresh virtualenv)
gives a `dueflow` command that answers for every role and migrates a database."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from domain.adapters.schema_revision import HEAD
from tests.deploy.tools import ROOT, run, tool
from workers.registry import WORKER_NAMES

DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
# the dependencies' wheels, one folder per set of pins, kept between runs like pip's own cache
WHEEL_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dueflow-wheels"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")  # what .dockerignore leaves out


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined), as (keyword, arguments)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def stage(name: str) -> list[tuple[str, str]]:
    """The instructions of one build stage."""
    found: list[tuple[str, str]] = []
    inside = False
    for keyword, arguments in instructions():
        if keyword == "FROM":
            inside = arguments.split()[-1] == name
        elif inside:
            found.append((keyword, arguments))
    return found


def copied_sources() -> list[str]:
    """What the builder stage copies from the build context."""
    return [
        source
        for keyword, arguments in stage("builder")
        if keyword == "COPY"
        for source in arguments.split()[:-1]
    ]


def test_the_dockerfile_passes_hadolint() -> None:
    run(tool("hadolint"), "--failure-threshold", "info", DOCKERFILE)


def test_the_builder_copies_every_package_the_wheel_includes() -> None:
    found = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in found}
    assert packages <= set(copied_sources())
    assert {"pyproject.toml", "README.md"} <= set(copied_sources())


def test_the_build_context_lets_through_what_the_builder_copies() -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert set(copied_sources()) <= allowed


def test_the_runtime_runs_as_a_numeric_non_root_user_without_secrets() -> None:
    runtime = stage("runtime")
    users = [arguments for keyword, arguments in runtime if keyword == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1])
    assert ("ENTRYPOINT", '["dueflow"]') in runtime
    declared = " ".join(arguments for keyword, arguments in runtime if keyword in ("ENV", "ARG"))
    assert not re.search(r"TOKEN|SECRET|PASSWORD|DATABASE_URL", declared)
    version = next(a for k, a in runtime if k == "ARG" and a.startswith("VERSION="))
    assert version == f"VERSION={PYPROJECT['project']['version']}"


def dependency_wheels(sources: Path) -> Path:
    """The dependencies' wheels, built once per set of pins (the builder stage's first half)."""
    pins = "\n".join(PYPROJECT["project"]["dependencies"]).encode()
    cache = WHEEL_CACHE / hashlib.sha256(pins).hexdigest()[:16]
    if not cache.is_dir():
        building = cache.with_suffix(".partial")
        shutil.rmtree(building, ignore_errors=True)
        building.parent.mkdir(parents=True, exist_ok=True)
        pip_wheel = (sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir")
        run(*pip_wheel, building, sources, timeout=300)
        for wheel in building.glob("dueflow-*.whl"):
            wheel.unlink()
        building.rename(cache)
    return cache


@pytest.mark.timeout(420)
def test_the_image_install_gives_every_role_from_a_clean_venv(tmp_path: Path) -> None:
    sources = tmp_path / "src"
    sources.mkdir()
    for source in copied_sources():
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, sources / source, ignore=IGNORED)
        else:
            shutil.copy(ROOT / source, sources / source)
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    deps = dependency_wheels(sources)
    pip_wheel = (sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir")
    run(*pip_wheel, wheels, sources, timeout=300)
    run(sys.executable, "-m", "venv", "--without-pip", venv)  # the runtime stage's venv
    pip = (sys.executable, "-m", "pip", "--python", venv / "bin" / "python")
    install = ("install", "-q", "--no-compile", "--no-index", "--find-links", wheels)
    run(*pip, *install, "--find-links", deps, f"dueflow=={VERSION}", timeout=300)
    dueflow = venv / "bin" / "dueflow"

    for role in (["serve"], ["relay"], ["db", "upgrade"]):
        assert f"usage: dueflow {' '.join(role)}" in run(dueflow, *role, "--help")
    assert all(name in run(dueflow, "worker", "--help") for name in WORKER_NAMES)
    env = {  # as in the image: no project checkout, a database URL from the environment
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DUEFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'image.db'}",
    }
    assert f"schema at {HEAD}" in run(dueflow, "db", "upgrade", cwd=tmp_path, env=env)

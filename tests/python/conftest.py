"""Shared fixtures: the repository, the `pipec` binary the CLI comparisons run."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def pipec_bin():
    """The command-line `pipec` (PIPEC_BIN, else built with cargo into target/debug)."""
    given = os.environ.get("PIPEC_BIN")
    if given:
        return given
    subprocess.run(
        ["cargo", "build", "--quiet", "--locked", "-p", "pipec-cli"], cwd=ROOT, check=True
    )
    return str(ROOT / "target" / "debug" / "pipec")


def write(tmp_path, text, name="p.pipe"):
    """Writes a .pipe program into tmp_path and returns its path."""
    path = tmp_path / name
    path.write_text(text)
    return path

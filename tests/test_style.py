"""The code is formatted and linted as ``pyproject.toml`` configures ruff (``ruff format .``, ``ruff check .``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    return subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_code_is_formatted() -> None:
    proc = _ruff("format", "--check", ".")
    assert proc.returncode == 0, f"run `ruff format .`:\n{proc.stdout}{proc.stderr}"


def test_the_linter_passes() -> None:
    proc = _ruff("check", ".")
    assert proc.returncode == 0, f"run `ruff check --fix .`:\n{proc.stdout}{proc.stderr}"

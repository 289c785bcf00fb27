"""The README's Python example runs as written, and docstring examples (doctests) pass."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "the README must contain a Python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
    # the values the README's comments promise
    assert capsys.readouterr().out.splitlines() == [
        "0.602631 6", "0.0 0.43", "2", "[0.71 0.54 0.44 0.44] 9 4825", "True"
    ]


@pytest.mark.parametrize(
    "module",
    [
        "robustdistill.algorithms.query_game",
        "robustdistill.algorithms.depround",
        "robustdistill.algorithms.slam",
        "robustdistill.algorithms.weighting",
    ],
)
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

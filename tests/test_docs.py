"""The README's Python example runs as written, its links resolve, the generated results page matches its
JSON, and docstring examples (doctests) pass."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    """The README's text from the heading ``## title`` to the next ``## `` heading."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def _blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_example_runs(capsys):
    blocks = _blocks(_section("Python API"))
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


def test_readme_own_training_loop_runs(capsys):
    """The "In your own training loop" blocks, each at most 25 lines, run in order in one namespace: SLaM and
    Weighted Distillation with the user's teacher and student, and RAD choosing what a paid teacher labels,
    which uses exactly |V| + R b labels."""
    blocks = _blocks(_section("In your own training loop"))
    assert len(blocks) == 3 and all(len(b.strip().splitlines()) <= 25 for b in blocks)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    assert out[-1].endswith("after 270 teacher labels") and namespace["paid"].queries == 150 + 3 * 40
    assert namespace["paid"].calls == 270 and namespace["paid"].remaining == 0
    # the students learned (seeded, deterministic on the CPU): all three well above chance (0.1)
    accuracies = [float(x) for line in out for x in re.findall(r"student (0\.\d+)", line)]
    assert len(accuracies) == 3 and min(accuracies) > 0.6


def test_readme_relative_links_resolve():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    assert "docs/results/fashion_mnist.md" in local
    missing = [link for link in local if not (README.parent / link).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_results_page_is_generated_from_its_json():
    """The committed Fashion-MNIST page is exactly what the benchmark writes from the committed JSON (no hand
    edits), and its figure is there."""
    import json

    from robustdistill.experiments.benchmarks import realdata

    folder = README.parent / "docs" / "results"
    result = json.loads((folder / "bench_realdata.json").read_text(encoding="utf-8"))
    assert (folder / "fashion_mnist.md").read_text(encoding="utf-8") == realdata.page(result, "realdata_paired.png")
    assert (folder / "realdata_paired.png").stat().st_size > 0


def test_method_defaults_are_the_committed_ablation_winners():
    """WeightedDistillation's and SLaM's defaults are the winning rows of the committed Fashion-MNIST run."""
    import json

    from robustdistill.algorithms.methods import SLaM, WeightedDistillation
    from robustdistill.experiments.benchmarks import realdata

    result = json.loads((README.parent / "docs" / "results" / "bench_realdata.json").read_text(encoding="utf-8"))
    best = realdata.winners(result)
    for method, group in ((WeightedDistillation(), "weighted"), (SLaM(), "slam")):
        params = method.get_params()
        assert {k: params[k] for k in best[group]["options"]} == best[group]["options"], group

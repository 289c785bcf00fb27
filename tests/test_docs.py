"""The README's and the guide's Python blocks run as written, the README's links resolve, its results block
and the results pages are what the code generates from the committed JSON, and docstring examples
(doctests) pass."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
TOUR = README.parent / "docs" / "guide" / "tour.md"


def _section(title: str) -> str:
    """The README's text from the heading ``## title`` to the next ``## `` heading."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def _blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_guide_tour_runs(capsys):
    blocks = _blocks(TOUR.read_text(encoding="utf-8"))
    assert blocks, "the tour must contain a Python example"
    for block in blocks:
        exec(compile(block, str(TOUR), "exec"), {})
    # the values the README's comments promise
    assert capsys.readouterr().out.splitlines() == [
        "0.602631 6",
        "0.0 0.43",
        "2",
        "[0.71 0.54 0.44 0.44] 9 4825",
        "True",
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


def test_readme_has_no_other_python_blocks():
    assert len(_blocks(README.read_text(encoding="utf-8"))) == len(_blocks(_section("Quickstart"))) == 4


def test_readme_quickstart_runs(capsys):
    """The quickstart's blocks, each at most 25 lines, run in order in one namespace: SLaM and Weighted
    Distillation with the user's teacher and student, RAD choosing what a paid teacher labels, which uses
    exactly |V| + R b labels, and a guarantee checked against the linear program."""
    blocks = _blocks(_section("Quickstart"))
    assert len(blocks) == 4 and all(len(b.strip().splitlines()) <= 25 for b in blocks)
    namespace: dict = {}
    for block in blocks[:3]:
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    assert out[-1].endswith("after 270 teacher labels") and namespace["paid"].queries == 150 + 3 * 40
    assert namespace["paid"].calls == 270 and namespace["paid"].remaining == 0
    # the students learned (seeded, deterministic on the CPU): all three well above chance (0.1)
    accuracies = [float(x) for line in out for x in re.findall(r"student (0\.\d+)", line)]
    assert len(accuracies) == 3 and min(accuracies) > 0.6
    exec(compile(blocks[3], str(README), "exec"), {})
    value, gap = re.fullmatch(r"value (\S+), gap to the LP (\S+)", capsys.readouterr().out.splitlines()[0]).groups()
    assert float(gap) < 1e-9 < float(value)


def test_readme_results_block_is_generated():
    """The README's headline table is what the benchmark's ``headline`` makes of the committed JSON."""
    import json

    from robustdistill.experiments.benchmarks import realdata

    text = README.read_text(encoding="utf-8")
    block = text[text.index("<!-- headline") : text.index("<!-- end of headline")]
    result = json.loads((README.parent / "docs" / "results" / "bench_realdata.json").read_text(encoding="utf-8"))
    assert block.split("\n", 1)[1].strip() == realdata.headline(result).strip()


def test_checks_page_is_generated_from_its_json():
    import json

    from robustdistill.experiments.cli.jobs import checks_page

    folder = README.parent / "docs" / "results"
    report = json.loads((folder / "verify.json").read_text(encoding="utf-8"))
    assert (folder / "checks.md").read_text(encoding="utf-8") == checks_page(report)


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

"""``robustdistill reproduce``: the report writers (pure functions of the result dict) and the job's control flow
with every step replaced by a tiny fake (no simulator, benchmark or figure runs here)."""

from __future__ import annotations

import base64
import html.parser
import json
import os
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from report_samples import synthetic_result, tiny_png

from robustdistill.experiments import cli
from robustdistill.experiments.benchmarks import BENCHMARKS, Benchmark
from robustdistill.experiments.cli import jobs
from robustdistill.experiments.cli import reproduce as R


class _Collector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Collector:
    parser = _Collector()
    parser.feed(page)
    parser.close()
    return parser


def test_html_report_embeds_figures_lists_failures_first_and_escapes(tmp_path: Path) -> None:
    result = synthetic_result(tmp_path)
    assert result["exit_code"] == 2 and result["failed_checks"] == ["S9"] and result["errored_steps"] == ["distill"]
    page = R.render_html(result)
    doc = parse(page)
    images = [attrs for tag, attrs in doc.tags if tag == "img"]
    assert [a["alt"] for a in images] == ["fig_a", "fig_b"]
    for attrs, fig in zip(images, result["figures"]):  # embedded, byte for byte: the page works when moved
        src = attrs["src"] or ""
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == Path(fig["png"]).read_bytes()
    # Escaping: the only <script> is the report's own; the claim's markup is text.
    assert [t for t, _ in doc.tags].count("script") == 1
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;boom&gt; &amp; co" in page and "1e6   0.29 &lt;fast&gt;" in page
    # Failures come first: the problems block precedes every table, naming the failing check, the missed target
    # and the error.
    problems, first_table = page.index('id="problems"'), page.index("<table>")
    assert page.index('id="summary"') < problems < first_table
    block = page[problems:first_table]
    assert "S9" in block and "distill" in block and "P1" not in block
    assert "speedup" in block and "measured 3, bound &gt;= 10" in block and "solve_s" not in block
    # The failing check's row is highlighted, the holding one is not.
    rows = page.split("<tr")
    assert any('class="fail"' in r and "check-S9" in r for r in rows)
    assert not any('class="fail"' in r and "check-P1" in r for r in rows)
    # Benchmarks: targets met / missed / not measured.
    assert "1 met, 1 missed, 1 not measured" in page
    assert any('class="fail"' in r and "speedup" in r and "MISSED" in r for r in rows)
    # Figures: the description, where the data came from, and a note on the quick fallback (fig_a only).
    assert "fig_a &lt;shows&gt;" in page and "data: stored results (R1: " in page
    assert page.count(R.QUICK_FIGURE_NOTE.split(" (")[0]) == 1
    assert page.index(R.QUICK_FIGURE_NOTE.split(" (")[0]) < page.index('alt="fig_b"')
    assert "robustdistill reproduce --out &#x27;a b&#x27;" in page and "numpy" in page and "6.6 s" in page


def summary_block(page: str) -> str:
    start = page.index('id="summary"')
    return page[start : page.index("</section>", start)]


def test_summary_counts_checks_targets_and_steps_and_fails_on_any_problem(tmp_path: Path) -> None:
    page = R.render_html(synthetic_result(tmp_path, skipped=True))
    block = summary_block(page)
    assert 'class="status fail"' in block and "FAILED: 1 check(s) failed; 1 benchmark target(s) missed" in block
    assert "1 of 2 checks hold (failed: S9)" in block
    assert "benchmark targets: 1 met, 1 missed, 1 not measured (missed: game/speedup; not measured: game/cuda)" in block
    assert "4 of 5 steps ran without error (raised: distill)" in block
    assert "skipped: realdata: the Fashion-MNIST files are missing" in block  # with the reason
    assert "exit code 2" in block


def test_summary_is_green_only_when_everything_holds_is_met_and_ran(tmp_path: Path) -> None:
    page = R.render_html(synthetic_result(tmp_path, failing=False, errored=False))
    parse(page)
    block = summary_block(page)
    assert 'id="problems"' not in page and 'class="status ok"' in block and "2 of 2 checks hold" in block
    assert "3 met, 0 missed, 0 not measured" in block and "4 of 4 steps ran without error" in block


def test_summary_a_missed_target_alone_is_red_though_the_exit_code_is_0(tmp_path: Path) -> None:
    result = synthetic_result(tmp_path, failing=False, errored=False)
    result["benchmarks"]["game"]["targets_met"]["speedup"] = False
    page = R.render_html(result)
    assert result["exit_code"] == 0 and 'class="status fail"' in summary_block(page)
    assert "FAILED: 1 benchmark target(s) missed" in page and 'id="problems"' in page
    assert "**FAILED: 1 benchmark target(s) missed**" in R.render_markdown(result)


@pytest.mark.parametrize("gap", ["skipped", "unmeasured", "no verify", "partial"])
def test_summary_is_incomplete_when_something_was_not_measured(tmp_path: Path, gap: str) -> None:
    result = synthetic_result(tmp_path, failing=False, errored=False, skipped=gap == "skipped")
    if gap == "unmeasured":
        result["benchmarks"]["game"]["targets_met"]["cuda"] = None
    if gap == "no verify":
        result["checks"], result["steps"] = None, [s for s in result["steps"] if s["name"] != "verify"]
    if gap == "partial":
        result["finished"] = False
    block = summary_block(R.render_html(result))
    assert 'class="status incomplete"' in block and "INCOMPLETE: nothing failed" in block
    expected = {
        "skipped": "skipped: realdata: the Fashion-MNIST files are missing",
        "unmeasured": "not measured: game/cuda",
        "no verify": "checks: verify not run",
        "partial": "still running (partial report)",
    }[gap]
    assert expected in block


def test_checks_show_the_comparator_beside_the_bound_when_the_record_has_one(tmp_path: Path) -> None:
    result = synthetic_result(tmp_path)
    page = R.render_html(result)
    header = "<th>check</th><th>claim</th><th>bound</th><th>measured</th><th>interval</th><th>holds</th>"
    assert header in page  # the claim beside the bound and the measurement
    rows = {
        name: re.findall(r"<td[^>]*>(.*?)</td>", next(r for r in page.split("<tr") if f'id="check-{name}"' in r))
        for name in ("P1", "S9")
    }
    assert rows["P1"][2:4] == ["measured &lt;= 1e-09", "1e-15"]  # from the record's comparator
    assert rows["S9"][2:4] == ["0", "1"]  # none: the bare bound
    assert "1 of 2 check records carry no comparator" in page
    assert [R._requirement({"bound": 0.5, "comparator": c}) for c in (">=", "in", "|gap| <=")] == [
        "measured >= 0.5",
        "0.5 in interval",
        "|gap| <= 0.5",
    ]
    for check in result["checks"]:
        check["comparator"] = ">="
    assert "carry no comparator" not in R.render_html(result)


def test_benchmark_rows_are_html_tables_with_a_link_to_the_json(tmp_path: Path) -> None:
    page = R.render_html(synthetic_result(tmp_path))
    section = page[page.index('id="bench-game"') : page.index('id="bench-distill"')]
    assert '<a href="bench_game.json"><code>bench_game.json</code></a>' in section
    assert "<th>n</th><th>solve_<wbr>s</th><th>note</th><th>gaps</th>" in section
    assert '<td class="num">1000000</td>' in section and "<td>&lt;fast&gt;</td>" in section
    assert "[0, 1, 2, ... (9 values)]" in section  # a long list is summarised; the JSON file has it all
    assert "dtype <strong>float64</strong>" in section  # the result's flat objects, one line each
    # The console text is kept, folded: no <pre> outside a <details>.
    assert section.count("<pre>") == 1 and section.index("<details>") < section.index("<pre>")


def test_json_tables_and_facts_from_a_benchmark_result() -> None:
    result = {
        "benchmark": "x",
        "seconds": 1.5,
        "environment": {"python": "3"},
        "targets": {"t": {"bound": 1}},
        "rows": [
            {"n": 1, "acc": [[0.1, 0.2], [0.3, 0.4]], "empty": None, "opts": {"a": 1}},
            {"n": 2, "acc": [[0.5, 0.6], [0.7, 0.8]], "empty": None, "opts": {}, "pool": [{"k": 1}]},
        ],
        "cells": {"digits-100": {"vanilla": 0.8, "slam": 0.85}},
        "fit": {"a": 2.0, "grid": {"n": [1, 2]}},
        "deep": {"a": {"b": {"c": 1}}},
    }
    tables = R._json_tables(result)
    assert [t["name"] for t in tables] == ["rows", "cells"]
    assert tables[0]["columns"] == ["n", "acc", "opts", "pool"]  # the all-empty column is dropped
    assert tables[0]["rows"] == [[1, "2 x 2 values", "a: 1", None], [2, "2 x 2 values", "", "1 records"]]
    assert tables[1] == {"name": "cells", "columns": ["key", "vanilla", "slam"], "rows": [["digits-100", 0.8, 0.85]]}
    facts = R._json_facts(result)
    assert facts == [
        {"name": "", "items": [["benchmark", "x"], ["seconds", 1.5]]},
        {"name": "fit", "items": [["a", 2.0], ["grid", "n: [1, 2]"]]},
    ]


def test_headline_figure_per_method_near_the_top_each_image_once(tmp_path: Path) -> None:
    result = synthetic_result(tmp_path, headlines=True)
    page = R.render_html(result)
    top = page[page.index('id="headlines"') : page.index('id="steps"')]
    assert page.index('id="problems"') < page.index('id="headlines"') < page.index('id="steps"')
    assert [m for m in ("RAD: rad_active_curves", "Weighted: weighted_weights", "SLaM: slam_mixing") if m in top] == [
        "RAD: rad_active_curves",
        "Weighted: weighted_weights",
        "SLaM: slam_mixing",
    ]
    assert top.index("RAD:") < top.index("Weighted:") < top.index("SLaM:")
    alts = [a["alt"] for t, a in parse(page).tags if t == "img"]
    assert sorted(alts) == sorted(f["name"] for f in result["figures"])  # once each: the Figures section links
    figures = page[page.index('id="figures"') :]
    assert '<a href="#figure-rad_active_curves">' in figures and 'alt="rad_active_curves"' not in figures
    text = R.render_markdown(result)
    assert text.index("## Headline figures") < text.index("## Steps") and "### RAD: rad_active_curves" in text
    # The preferred figure first, else the first of the method's prefix.
    names = [{"name": n} for n in ("slam_mixing", "rad_worst_case", "slam_accuracy_vs_labels", "realdata_paired")]
    assert [(m, f["name"]) for m, f in R._headlines(names)] == [
        ("RAD", "rad_worst_case"),
        ("SLaM", "slam_accuracy_vs_labels"),
    ]
    assert R._headlines([{"name": "fig_a"}]) == []


def test_every_figure_caption_says_what_data_and_sizes_it_was_made_from(tmp_path: Path) -> None:
    result = synthetic_result(tmp_path, headlines=True)
    page = R.render_html(result)
    captions = {
        f["name"]: page[page.index(f'id="figure-{f["name"]}"') :].split("</figcaption>", 1)[0]
        for f in result["figures"]
    }
    assert all("data: " in c for c in captions.values())
    rad = captions["rad_active_curves"]  # a stored result of the quick grid: said so, with its sizes
    assert R.STORED_QUICK_NOTE.split(" (")[0] in rad
    assert "bench_active.json: quick grid (quick=True), 2 seeds, dataset digits, mnist1d, 4 rows" in rad
    assert R.QUICK_FIGURE_NOTE.split(" (")[0] in captions["fig_a"]  # a quick fallback for a missing result
    assert "simulator check R1 at its quick size" in captions["fig_b"] and "instances 300" in captions["fig_b"]
    assert (
        "computed by the figure script (weights: distillation_weights; num_classes: [10, 2])"
        in captions["weighted_weights"]
    )
    assert not any(
        n in captions[k]
        for k in ("fig_b", "weighted_weights", "slam_mixing")
        for n in (R.STORED_QUICK_NOTE.split(" (")[0], R.QUICK_FIGURE_NOTE.split(" (")[0])
    )


def test_markdown_summary(tmp_path: Path) -> None:
    result = synthetic_result(tmp_path)
    text = R.render_markdown(result)
    assert text.index("**FAILED: ") < text.index("## Failures") < text.index("## Checks")
    assert "- 1 of 2 checks hold (failed: S9)" in text and "- benchmark target **speedup** of game missed" in text
    assert "![fig_a](figures/fig_a.png)" in text and "![fig_b](figures/fig_b.png)" in text
    assert "\\| a pipe" in text  # a pipe inside a cell does not split the table
    check_rows = [line for line in text.splitlines() if line.startswith("| S9 ")]
    assert len(check_rows) == 1 and check_rows[0].count(" | ") == 5 and "**NO**" in check_rows[0]
    assert "| P1 | value <= V* & min-max | measured <= 1e-09 |" in text
    assert "```text\nsize  seconds" in text and "| solve_s | solve at 1e6 | <= 0.5 | 0.29 | met |" in text
    assert "| speedup | LP speedup | >= 10 | 3 | MISSED |" in text and "| n | solve_s | note | gaps |" in text
    assert "[`bench_game.json`](bench_game.json)" in text


def test_write_report_is_atomic_and_complete(tmp_path: Path) -> None:
    result = synthetic_result(tmp_path)
    paths = R.write_report(result, tmp_path)
    assert {p.name for p in paths.values()} == {"reproduce.json", "index.html", "summary.md"}
    assert json.loads(paths["json"].read_text())["failed_checks"] == ["S9"]
    assert not list(tmp_path.glob(".*.tmp"))
    umask = os.umask(0o022)
    os.umask(umask)
    assert paths["html"].stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any file, not mkstemp's 0600


# ------------------------------------------------------------------------------------------ reproduce() itself


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Every step replaced: verify returns two checks (``holds`` set by the test), each bench a tiny result
    (``raise_in`` names one that raises), figures one tiny PNG."""
    state: dict[str, Any] = {"holds": True, "raise_in": None, "calls": []}

    def fake_verify(out: Path, *, full: bool, seed: int, progress: bool) -> tuple[dict[str, Any], Path]:
        state["calls"].append(("verify", full))
        checks = [
            {"name": "P1", "claim": "c", "bound": 0, "measured": 0, "interval": [0, 0], "holds": True},
            {"name": "P2", "claim": "d", "bound": 0, "measured": 1, "interval": [1, 1], "holds": state["holds"]},
        ]
        return {"checks": checks}, Path(out) / "verify.json"

    def fake_bench(target: str, out: Path, *, seed: int, quick: bool, progress: bool, **options: Any) -> Any:
        state["calls"].append((target, quick))
        state.setdefault("options", {})[target] = options
        if target == state["raise_in"]:
            raise RuntimeError(f"{target} broke")
        result = {"seconds": 0.0, "targets": {}, "targets_met": {}}
        return result, f"table of {target}", Path(out) / f"bench_{target}.json"

    def make_figures(names: list[str], out: Path, results: Path, quick: bool, progress: bool) -> list[Any]:
        state["calls"].append(("figures", quick))
        png = tiny_png(Path(out) / f"{names[0]}.png")
        return [types.SimpleNamespace(name=names[0], files=[png], data_path=Path(out) / "d.json", source="s.py")]

    monkeypatch.setattr(jobs, "run_verify", fake_verify)
    monkeypatch.setattr(jobs, "run_bench", fake_bench)
    api = types.SimpleNamespace(FIGURES=["only_fig"], make_figures=make_figures)
    monkeypatch.setattr(R, "_figures_api", lambda: api)
    return state


def test_reproduce_all_steps_in_order_and_report(tmp_path: Path, fakes: dict[str, Any]) -> None:
    result = R.reproduce(tmp_path, progress=False)
    assert result.exit_code == 0 and [s.name for s in result.steps] == list(R.STEPS)
    assert [c[0] for c in fakes["calls"]] == list(R.STEPS)
    assert all(quick is False for name, quick in fakes["calls"] if name in R.MAIN_BENCHES)
    assert ("verify", False) in fakes["calls"] and ("figures", True) in fakes["calls"]
    assert R.MAIN_BENCHES == tuple(BENCHMARKS)
    page = (tmp_path / "index.html").read_text()
    assert page.count("<img ") == 1 and "table of active" in page
    saved = json.loads((tmp_path / "reproduce.json").read_text())
    assert saved["exit_code"] == 0 and saved["finished"] is True and len(saved["steps"]) == len(R.STEPS)


def test_reproduce_failing_check_exits_1(tmp_path: Path, fakes: dict[str, Any]) -> None:
    fakes["holds"] = False
    result = R.reproduce(tmp_path, progress=False, steps=["verify"])
    assert result.exit_code == 1 and result.failed_checks == ["P2"] and result.steps[0].status == "failed"


def test_reproduce_step_error_is_recorded_and_job_goes_on(tmp_path: Path, fakes: dict[str, Any]) -> None:
    fakes["raise_in"] = "halfspace"
    result = R.reproduce(tmp_path, progress=False, steps=["figures", "halfspace", "game", "throughput"])
    assert [s.name for s in result.steps] == ["game", "halfspace", "throughput", "figures"]  # the job's order
    assert result.exit_code == 2 and result.errored_steps == ["halfspace"]
    step = result.steps[1]
    assert step.error == "RuntimeError: halfspace broke" and "Traceback" in (step.traceback or "")
    assert set(result.benchmarks) == {"game", "throughput"} and len(result.figures) == 1
    page = (tmp_path / "index.html").read_text()
    assert page.index('id="problems"') < page.index("<table>") and "halfspace broke" in page


def test_reproduce_full_notes_benches_without_larger_grid(tmp_path: Path, fakes: dict[str, Any]) -> None:
    result = R.reproduce(tmp_path, full=True, progress=False, steps=["verify", "game", "figures"])
    assert ("verify", True) in fakes["calls"] and ("figures", False) in fakes["calls"]
    assert "no larger grid" in (result.benchmarks["game"]["note"] or "")
    assert "no larger grid" in (tmp_path / "summary.md").read_text()


def test_reproduce_full_runs_the_accuracy_grids_with_more_seeds(tmp_path: Path, fakes: dict[str, Any]) -> None:
    R.reproduce(tmp_path, full=True, progress=False, steps=["game", "distill", "active"])
    assert fakes["options"] == {"game": {}, "distill": {"seeds": 10}, "active": {"seeds": 10}}
    R.reproduce(tmp_path, progress=False, steps=["distill"])
    assert fakes["options"]["distill"] == {}  # the default grid without --full


def test_reproduce_rejects_unknown_steps(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="steps"):
        R.reproduce(tmp_path, steps=["verify", "nope"])
    with pytest.raises(ValueError, match="steps"):
        R.reproduce(tmp_path, steps=[])


def test_cli_reproduce_exit_codes(tmp_path: Path, fakes: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["reproduce", "--quiet", "--out", str(tmp_path), "--only", "verify", "game"]) == 0
    fakes["holds"], fakes["raise_in"] = False, "game"
    assert cli.main(["reproduce", "--quiet", "--out", str(tmp_path), "--only", "verify", "game"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "P2" in err[0] and "game" in err[0]
    assert cli.main(["reproduce", "--only", "nothing"]) == 2  # argparse usage error


def test_run_bench_moves_the_benchmarks_folders_under_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``bench`` and ``reproduce`` share ``run_bench``: a benchmark's ``reports/...`` folders follow ``--out``, so
    its finished seeds resume from there; other keyword arguments keep their defaults."""
    calls: list[dict[str, Any]] = []

    def run(
        *,
        seed: int = 0,
        quick: bool = False,
        progress: bool | None = None,
        out: str = "reports/distill",
        cache: str = "reports/cache",
        device: str = "auto",
        grid: str = "methods",
    ) -> dict[str, Any]:
        calls.append({"seed": seed, "quick": quick, "out": out, "cache": cache, "device": device, "grid": grid})
        return {"value": 1}

    module = types.SimpleNamespace(run=run, table=lambda result: f"value {result['value']}")
    monkeypatch.setitem(sys.modules, "robustdistill.experiments.benchmarks.fake", module)
    monkeypatch.setitem(BENCHMARKS, "fake", Benchmark("fake", "a fake benchmark", 1, {"grid": "ablation"}))
    result, table, path = jobs.run_bench("fake", tmp_path / "r", seed=3, quick=True)
    assert calls == [
        {
            "seed": 3,
            "quick": True,
            "out": str(tmp_path / "r" / "distill"),
            "cache": str(tmp_path / "r" / "cache"),
            "device": "auto",
            "grid": "ablation",
        }
    ]
    assert table == "value 1" and path == tmp_path / "r" / "bench_fake.json"
    assert json.loads(path.read_text()) == result == {"value": 1}

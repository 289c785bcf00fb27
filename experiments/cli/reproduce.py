r"""The main job, ``robustdistill reproduce`` (``make reproduce``): every check, the benchmarks and every figure,
then one report.

Steps, in this order (:data:`STEPS`; ``steps=`` / ``--only`` runs a subset, still in this order):

1. ``verify``: every simulator check (``theory.simulators.run_checks(quick=not full)``), written as
   ``OUT/verify.json`` and ``OUT/data/NAME.json`` exactly as ``robustdistill verify`` does
   (:func:`~robustdistill.experiments.jobs.run_verify`).
2. the benchmarks of the main job (:data:`MAIN_BENCHES`, targets of ``robustdistill bench``): each one's default
   grid (``quick=False``, seed 0), written as ``OUT/bench_NAME.json`` exactly as ``robustdistill bench NAME``
   does (:func:`~robustdistill.experiments.jobs.run_bench`). Their run folders (``OUT/distill``, ``OUT/active``,
   ``OUT/cache``) keep every finished seed, so a rerun after an interruption resumes.
3. ``figures``: every figure of ``paper_figures`` (``make_figures(out=OUT/figures, results=OUT)``), PNG + PDF +
   the data behind it, from the results the steps above wrote. A figure whose stored result is missing (its
   step failed, or was left out with ``--only``) runs its quick experiment instead and the report says so
   (its source is ``quick``); with ``full=True`` it fails instead.

A step that raises is recorded with its error (and traceback) and the job goes on. The exit code
(:attr:`ReproduceResult.exit_code`) is 2 when a step raised, else 1 when a check failed, else 0; benchmark
targets that are not met are reported, not failed (several need hardware the machine may lack, e.g. CUDA).

``full=True`` (``--full``) runs the specs' simulator sizes (``run_checks(quick=False)``, about 6.5 min alone)
and the figures without the quick fallback (``make_figures(quick=False)``); a benchmark runs the larger setting
of :data:`FULL_BENCH_OPTIONS` where it has one (the accuracy grids with 10 seeds), otherwise its default grid,
and the report says which.

Report (after every step, so an interrupted run leaves one; written atomically): ``OUT/reproduce.json`` (the
result, :meth:`ReproduceResult.to_dict`), ``OUT/index.html`` (:func:`render_html`: one self-contained page,
figures inline as base64 PNG, so the file still works when moved) and ``OUT/summary.md``
(:func:`render_markdown`: figures as relative links). Both renderers are pure functions of the result dict
(plus the PNG files it names), testable without running anything.

Time: about 24 minutes on the 2-core reference machine from an empty ``reports/`` (:data:`EXPECTED_SECONDS`,
which also weights the progress bar so that its ETA means something).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import importlib
import json
import os
import shlex
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustdistill.algorithms.results import Result

from ..benchmarks import BENCHMARKS, BenchmarkSkipped
from ..benchmarks.reporting import format_markdown_table, format_value, markdown_cell
from ..pipeline.files import environment_info, write_atomic, write_json_atomic
from . import jobs

__all__ = [
    "EXPECTED_SECONDS",
    "FULL_BENCH_OPTIONS",
    "MAIN_BENCHES",
    "STEPS",
    "ReproduceResult",
    "StepResult",
    "render_html",
    "render_markdown",
    "reproduce",
    "write_report",
]

#: The benchmarks of the main job, in the order they run (:data:`~robustdistill.experiments.benchmarks.BENCHMARKS`).
MAIN_BENCHES: tuple[str, ...] = tuple(BENCHMARKS)
#: Every step, in the order they run.
STEPS: tuple[str, ...] = ("verify", *MAIN_BENCHES, "figures")
#: Larger settings for ``--full``: benchmark -> extra keyword arguments of its ``run`` (``Benchmark.full_options``:
#: the accuracy grids with 10 seeds, tighter bands at about 3x their default time, so a GPU is recommended). The
#: speed benchmarks have no larger grid: with ``--full`` they run their default and the report says so.
FULL_BENCH_OPTIONS: dict[str, dict[str, Any]] = {name: b.full_options for name, b in BENCHMARKS.items() if b.full_options}
#: Wall seconds per step on the 2-core reference machine (default sizes, empty ``reports/``); ``verify`` with
#: ``full=True`` takes about 400 s instead. They weight the progress bar.
EXPECTED_SECONDS: dict[str, float] = {"verify": 15, **{n: b.expected_seconds for n, b in BENCHMARKS.items()},
                                      "figures": 60}  # fmt: skip
FULL_VERIFY_SECONDS = 400.0
QUICK_FIGURE_NOTE = "made from a quick smoke run (seconds-long, not the benchmark's grid): the stored result it " \
    "plots was missing (its step failed or was left out)."


@dataclass(frozen=True)
class StepResult(Result):
    """One step: ``status`` is ``ok``, ``skipped`` (an input the user can supply is missing: ``note`` says which
    and how to get it), ``failed`` (it ran; a check failed) or ``error`` (it raised: ``error``
    is the one-line message, ``traceback`` the whole one); ``note`` says anything else the report should."""

    name: str
    kind: str
    status: str
    seconds: float
    error: str | None = None
    traceback: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ReproduceResult(Result):
    """What ``reproduce`` did. ``checks``: verify's check records (None when verify did not run);
    ``benchmarks``: name -> {"description", "json", "table", "targets", "targets_met", "seconds", "options",
    "note"}; ``figures``: [{"name", "description", "files", "png", "data_path", "source" ("stored" | "quick"),
    "inputs"}]; ``finished``: False in the partial report written after each step; ``exit_code``: 2 if a step
    raised, else 1 if a check failed, else 0."""

    out: str
    full: bool
    seed: int
    command: str
    started_utc: str
    seconds: float
    steps: tuple[StepResult, ...]
    checks: tuple[dict[str, Any], ...] | None
    benchmarks: dict[str, dict[str, Any]]
    figures: tuple[dict[str, Any], ...]
    environment: dict[str, Any] = field(repr=False)
    finished: bool = True

    @property
    def skipped_steps(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "skipped"]

    @property
    def failed_checks(self) -> list[str]:
        return _failed_checks(self.checks)

    @property
    def errored_steps(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "error"]

    @property
    def exit_code(self) -> int:
        return _exit_code(self.steps, self.checks)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(exit_code=self.exit_code, failed_checks=self.failed_checks, errored_steps=self.errored_steps)
        return out


def _failed_checks(checks: Iterable[dict[str, Any]] | None) -> list[str]:
    return [str(c["name"]) for c in checks or () if not c.get("holds")]


def _exit_code(steps: Iterable[StepResult], checks: Iterable[dict[str, Any]] | None) -> int:
    if any(s.status == "error" for s in steps):
        return 2
    return 1 if _failed_checks(checks) else 0


def _duration(seconds: float) -> str:
    """``9.3 s``, ``4 min 05 s``, ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _command(out: str, full: bool, seed: int, steps: Sequence[str]) -> str:
    argv = [jobs.PROG, "reproduce"] + (["--full"] if full else []) + ["--out", out]
    if seed:
        argv += ["--seed", str(seed)]
    if tuple(steps) != STEPS:
        argv += ["--only", *steps]
    return shlex.join(argv)


def _figures_api() -> Any:
    """The ``paper_figures`` package (``FIGURES``, ``make_figures``), imported when the figures step runs."""
    return importlib.import_module("robustdistill.paper_figures")


def _figure_names(api: Any) -> list[str]:
    return [f if isinstance(f, str) else str(f.name) for f in api.FIGURES]


def _figure_inputs(data_path: Path) -> dict[str, str]:
    """Where a figure's numbers came from (the ``inputs`` of its data file), one short string each."""
    try:
        inputs = json.loads(data_path.read_text(encoding="utf-8")).get("inputs") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): _shorten(json.dumps(v) if not isinstance(v, str) else v) for k, v in dict(inputs).items()}


def _shorten(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _provenance(fig: dict[str, Any]) -> tuple[str, str, bool]:
    """(where the data came from, its inputs in one line, whether it is a quick fallback for a missing result)."""
    inputs = fig.get("inputs") or {}
    names = {"stored": "stored results", "quick": "computed by the figure script"}
    source = names.get(str(fig.get("source", "")), str(fig.get("source", "")))
    line = "; ".join(f"{k}: {v}" for k, v in inputs.items())
    return source, line, any("quick=True" in v for v in inputs.values())


def _run_figures(out: Path, full: bool, on_figure: Callable[[str], None]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every figure, one ``make_figures`` call each so that one failing figure costs only itself; returns the
    figures made and one ``NAME: error`` line per failure."""
    api = _figures_api()
    made, failed = [], []
    for name in _figure_names(api):
        on_figure(name)
        try:
            figures = api.make_figures(names=[name], out=out / "figures", results=out, quick=not full, progress=False)
        except Exception as exc:  # noqa: BLE001 - recorded, the other figures go on
            failed.append(f"{name}: {type(exc).__name__}: {' '.join(str(exc).split())}")
            continue
        descriptions = api.FIGURES if isinstance(api.FIGURES, dict) else {}
        for fig in figures:
            files = [str(p) for p in fig.files]
            png = next((p for p in files if p.lower().endswith(".png")), None)
            made.append({"name": str(fig.name), "description": str(descriptions.get(fig.name, "")), "files": files,
                         "png": png, "data_path": str(fig.data_path), "source": str(fig.source),
                         "inputs": _figure_inputs(Path(fig.data_path))})  # fmt: skip
    return made, failed


def _bench_record(name: str, result: dict[str, Any], table: str, path: Path, options: dict[str, Any],
                  note: str | None) -> dict[str, Any]:  # fmt: skip
    return {
        "description": BENCHMARKS[name].help,
        "json": str(path),
        "table": table,
        "targets": result.get("targets"),
        "targets_met": result.get("targets_met"),
        "seconds": result.get("seconds"),
        "options": options,
        "note": note,
    }


def reproduce(
    out: str | os.PathLike[str] = "reports",
    full: bool = False,
    progress: bool | None = None,
    steps: Sequence[str] | None = None,
    *,
    seed: int = 0,
) -> ReproduceResult:
    """Run the main job (module docstring) and write its report; return what happened.

    Args:
        out: output folder (``verify.json``, ``bench_NAME.json``, ``figures/``, ``index.html``, ...).
        full: the specs' simulator sizes and the benchmarks' larger settings where they exist.
        progress: one progress bar over the steps on stderr; None = only when stderr is a terminal.
        steps: names of :data:`STEPS` to run (default all); they run in :data:`STEPS` order.
        seed: the seed of every check and benchmark.
    """
    chosen = list(STEPS) if steps is None else list(steps)
    unknown = sorted(set(chosen) - set(STEPS))
    if unknown or not chosen:
        raise ValueError(f"steps must be a non-empty subset of {', '.join(STEPS)}; got {chosen}")
    chosen = [s for s in STEPS if s in chosen]
    if progress is None:
        progress = sys.stderr.isatty()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    started_utc = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    started = time.perf_counter()
    expected = {s: (FULL_VERIFY_SECONDS if full and s == "verify" else EXPECTED_SECONDS[s]) for s in chosen}
    state: dict[str, Any] = {"steps": [], "checks": None, "benchmarks": {}, "figures": []}
    environment = environment_info()
    command = _command(str(out), full, seed, chosen)

    def snapshot(finished: bool) -> ReproduceResult:
        return ReproduceResult(
            out=str(out), full=full, seed=seed, command=command, started_utc=started_utc,
            seconds=time.perf_counter() - started, steps=tuple(state["steps"]),
            checks=None if state["checks"] is None else tuple(state["checks"]), benchmarks=dict(state["benchmarks"]),
            figures=tuple(state["figures"]), environment=environment, finished=finished,
        )  # fmt: skip

    bar = tqdm(
        total=sum(expected.values()), desc="reproduce", file=sys.stderr, disable=not progress, leave=True,
        bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed} elapsed, ~{remaining} left",
    )  # fmt: skip
    stop = threading.Event()

    def tick() -> None:  # keeps the elapsed time moving during a long step
        while not stop.wait(1.0):
            bar.refresh()

    ticker = threading.Thread(target=tick, name="reproduce-progress", daemon=True)
    if progress:
        ticker.start()
    try:
        for i, name in enumerate(chosen, 1):
            bar.set_description_str(f"reproduce: {name} ({i}/{len(chosen)})")
            step_started = time.perf_counter()
            kind = "verify" if name == "verify" else "figures" if name == "figures" else "bench"
            status, note, error, trace = "ok", None, None, None
            try:
                if kind == "verify":
                    report, _ = jobs.run_verify(out_dir, full=full, seed=seed, progress=False)
                    state["checks"] = report["checks"]
                    failed = _failed_checks(report["checks"])
                    if failed:
                        status, note = "failed", f"{len(failed)} check(s) failed: {', '.join(failed)}"
                elif kind == "bench":
                    options = FULL_BENCH_OPTIONS.get(name, {}) if full else {}
                    if full and not options:
                        note = "no larger grid than the default exists for this benchmark; ran the default"
                    result, table, path = jobs.run_bench(name, out_dir, seed=seed, quick=False, progress=False,
                                                        **options)  # fmt: skip
                    state["benchmarks"][name] = _bench_record(name, result, table, path, options, note)
                else:
                    made, failed = _run_figures(
                        out_dir, full, lambda f: bar.set_description_str(f"reproduce: figures: {f} ({i}/{len(chosen)})")
                    )
                    state["figures"] = made
                    if failed:
                        raise RuntimeError(f"{len(failed)} figure(s) failed: " + "; ".join(failed))
            except BenchmarkSkipped as exc:
                status, note = "skipped", str(exc)
            except Exception as exc:  # noqa: BLE001 - recorded in the report; the job goes on
                status, error = "error", f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                trace = traceback.format_exc()
            seconds = time.perf_counter() - step_started
            state["steps"].append(StepResult(name, kind, status, seconds, error, trace, note))
            bar.update(expected[name])
            if i < len(chosen):  # a partial report after every step, in case the job is interrupted
                write_report(snapshot(finished=False).to_dict(), out_dir)
        result = snapshot(finished=True)
        bar.set_description_str(f"reproduce: done, {len(chosen)} step(s) in {_duration(result.seconds)}")
    finally:
        stop.set()
        if ticker.is_alive():
            ticker.join()
        bar.close()
    write_report(result.to_dict(), out_dir)
    return result


# --------------------------------------------------------------------------------------------------- report

_SCRIPT = """
window.__reportErrors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__reportErrors.push(t && t !== window && t.src ? 'failed to load ' + String(t.src).slice(0, 80)
                                                        : String(e.message || e.type));
}, true);
(function () {
  var original = console.error;
  console.error = function () {
    window.__reportErrors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
})();
window.addEventListener('load', function () {
  document.body.dataset.images = JSON.stringify(Array.prototype.map.call(document.images, function (i) {
    return i.naturalWidth;
  }));
  document.body.dataset.errors = JSON.stringify(window.__reportErrors);
});
"""

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2.2rem; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.85rem; }
pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; border-radius: 4px; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.fail td, tr.error td { background: #fde2e2; } tr.notmet td { background: #fff4d6; }
.status { padding: 0.6rem 0.9rem; border-radius: 4px; font-weight: 600; }
.status.ok { background: #e3f6e5; } .status.fail { background: #fde2e2; }
.problems { background: #fff0f0; border: 1px solid #f3b5b5; border-radius: 4px; padding: 0.5rem 1.5rem; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; } .note { color: #8a5a00; } .muted { color: #666; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Any) -> str:
    return _e(format_value(value))


def _html_table(header: Sequence[str], rows: Iterable[tuple[Sequence[str], str]], numeric: Sequence[bool] = ()) -> str:
    """``rows``: (already escaped cells, row class)."""
    numeric = list(numeric) + [False] * (len(header) - len(numeric))
    lines = ["<table>", "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead>", "<tbody>"]
    for cells, cls in rows:
        attr = f' class="{cls}"' if cls else ""
        tds = "".join(f'<td class="num">{c}</td>' if num else f"<td>{c}</td>" for c, num in zip(cells, numeric))
        lines.append(f"<tr{attr}>{tds}</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)


def _status_line(result: dict[str, Any]) -> tuple[bool, str]:
    failed, errored = result.get("failed_checks") or [], result.get("errored_steps") or []
    ran = [s["name"] for s in result.get("steps", [])]
    parts = []
    if result.get("checks") is not None:
        n = len(result["checks"])
        parts.append(f"{n - len(failed)} of {n} checks hold")
    elif "verify" in ran:
        parts.append("verify did not finish")
    else:
        parts.append("verify not run")
    parts.append(f"{len(ran) - len(errored)} of {len(ran)} steps ran without error")
    skipped = [s["name"] for s in result.get("steps", []) if s["status"] == "skipped"]
    if skipped:
        parts.append(f"skipped: {', '.join(skipped)} (see the step's detail)")
    if not result.get("finished", True):
        parts.append("still running (partial report)")
    return not failed and not errored, "; ".join(parts) + f"; exit code {result.get('exit_code', '?')}"


def _target_rows(bench: dict[str, Any]) -> list[dict[str, Any]]:
    met = bench.get("targets_met") or {}
    rows = []
    for name, t in (bench.get("targets") or {}).items():
        bound = t.get("bound")
        rows.append({
            "target": name, "description": t.get("description", ""),
            "bound": ("<= " if t.get("kind") == "max" else ">= ") + format_value(bound) if bound is not None else "-",
            "measured": t.get("measured"),
            "met": {True: "met", False: "NOT met", None: "not measured"}[met.get(name)],
        })  # fmt: skip
    return rows


def _relative(path: str, out: str) -> str:
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(out))
    return Path(rel).as_posix()


def render_html(result: dict[str, Any]) -> str:
    """The report as one self-contained HTML page: status and failures at the top, steps with timings, checks,
    one section per benchmark, figures inline (base64 PNG), versions. Every text is escaped. A small inline
    script records load errors and the images' natural widths on ``<body data-errors data-images>`` (read by
    the headless-browser test)."""
    ok, status = _status_line(result)
    failed, errored = result.get("failed_checks") or [], result.get("errored_steps") or []
    steps = result.get("steps", [])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>robustdistill reproduce report</title>",
        f"<script>{_SCRIPT}</script>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        "<h1>robustdistill: reproduce</h1>",
        f'<p class="muted">Command: <code>{_e(result.get("command", ""))}</code> &middot; started '
        f'{_e(result.get("started_utc", "?"))} (UTC) &middot; total {_e(_duration(float(result.get("seconds", 0))))}'
        f'{" &middot; full sizes (--full)" if result.get("full") else " &middot; default sizes"}</p>',
        f'<p class="status {"ok" if ok else "fail"}">{_e(status)}</p>',
    ]
    if failed or errored:
        items = [f'<li>check <a href="#check-{_e(n)}"><strong>{_e(n)}</strong></a> failed</li>' for n in failed]
        by_name = {s["name"]: s for s in steps}
        items += [f"<li>step <strong>{_e(n)}</strong> raised: <code>{_e(by_name[n].get('error'))}</code></li>"
                  for n in errored]  # fmt: skip
        parts += ['<div class="problems"><h2 id="problems">Failures</h2>', "<ul>", *items, "</ul></div>"]
    parts.append('<p><a href="#steps">Steps</a> &middot; <a href="#checks">Checks</a> &middot; '
                 '<a href="#benchmarks">Benchmarks</a> &middot; <a href="#figures">Figures</a> &middot; '
                 '<a href="#environment">Environment</a></p>')  # fmt: skip

    # Steps and timings.
    step_rows = []
    for s in steps:
        detail = s.get("error") or s.get("note") or ""
        step_rows.append(([_e(s["name"]), _e(s["status"]), _e(_duration(float(s["seconds"]))), _e(detail)],
                          {"error": "error", "failed": "fail", "skipped": "notmet"}.get(s["status"], "")))  # fmt: skip
    total = _e(_duration(float(result.get("seconds", 0))))
    step_rows.append((["<strong>total</strong>", "", f"<strong>{total}</strong>", ""], ""))
    parts += ['<h2 id="steps">Steps and timings</h2>',
              _html_table(["step", "status", "wall time", "detail"], step_rows, [False, False, True])]  # fmt: skip
    for s in steps:
        if s.get("traceback"):
            parts.append(f"<details><summary>traceback of {_e(s['name'])}</summary><pre>{_e(s['traceback'])}</pre>"
                         "</details>")  # fmt: skip

    # Checks.
    parts.append('<h2 id="checks">Checks</h2>')
    checks = result.get("checks")
    if checks is None:
        parts.append('<p class="muted">verify did not run or did not finish.</p>')
    else:
        rows = []
        for c in checks:
            rows.append(([f'<span id="check-{_e(c["name"])}">{_e(c["name"])}</span>', _e(c.get("claim", "")),
                          _cell(c.get("bound")), _cell(c.get("measured")), _cell(c.get("interval")),
                          "yes" if c.get("holds") else "<strong>NO</strong>"],
                         "" if c.get("holds") else "fail"))  # fmt: skip
        parts.append(f"<p>{len(checks) - len(failed)} of {len(checks)} hold.</p>")
        parts.append(_html_table(["check", "claim", "bound", "measured", "interval", "holds"], rows,
                                 [False, False, True, True, False, False]))  # fmt: skip

    # Benchmarks.
    parts.append('<h2 id="benchmarks">Benchmarks</h2>')
    benches = result.get("benchmarks") or {}
    step_status = {s["name"]: s for s in steps}
    if not benches and not any(s.get("kind") == "bench" for s in steps):
        parts.append('<p class="muted">No benchmark ran.</p>')
    for name in [s["name"] for s in steps if s.get("kind") == "bench"]:
        bench, step = benches.get(name), step_status[name]
        parts.append(f'<h3 id="bench-{_e(name)}">{_e(name)}</h3>')
        if bench is None:
            parts.append(f'<p class="note">did not finish: <code>{_e(step.get("error"))}</code></p>')
            continue
        met = bench.get("targets_met") or {}
        summary = (f"targets: {sum(v is True for v in met.values())} met, {sum(v is False for v in met.values())} "
                   f"not met, {sum(v is None for v in met.values())} not measured") if met else "no targets"
        parts.append(f"<p>{_e(bench.get('description', ''))}. {_e(summary)}; wall time "
                     f"{_e(_duration(float(step['seconds'])))}; result <code>{_e(Path(bench.get('json', '')).name)}"
                     "</code>.</p>")  # fmt: skip
        if bench.get("note"):
            parts.append(f'<p class="note">{_e(bench["note"])}</p>')
        target_rows = [([_e(r["target"]), _e(r["description"]), _e(r["bound"]), _cell(r["measured"]), _e(r["met"])],
                        {"NOT met": "notmet"}.get(r["met"], "")) for r in _target_rows(bench)]  # fmt: skip
        if target_rows:
            parts.append(_html_table(["target", "description", "bound", "measured", "met"], target_rows,
                                     [False, False, False, True, False]))  # fmt: skip
        parts.append(f"<pre>{_e(bench.get('table', ''))}</pre>")

    # Figures.
    parts.append('<h2 id="figures">Figures</h2>')
    figures = result.get("figures") or []
    if not figures:
        parts.append('<p class="muted">No figure was made.</p>')
    for fig in figures:
        png = fig.get("png")
        parts.append(f'<figure id="figure-{_e(fig["name"])}">')
        if png and Path(png).is_file():
            data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
            parts.append(f'<img src="data:image/png;base64,{data}" alt="{_e(fig["name"])}">')
        else:
            parts.append(f'<p class="note">PNG missing: {_e(png)}</p>')
        files = ", ".join(f"<code>{_e(_relative(f, result.get('out', '.')))}</code>" for f in fig.get("files", []))
        source, inputs, fallback = _provenance(fig)
        data = _e(_relative(fig.get("data_path", ""), result.get("out", ".")))
        caption = [f"<div>{_e(fig['description'])}</div>"] if fig.get("description") else []
        if fallback:
            caption.append(f'<div class="note">{_e(QUICK_FIGURE_NOTE)}</div>')
        caption.append(f"<div><strong>{_e(fig['name'])}</strong> &middot; data: {_e(source)}"
                       f"{' (' + _e(inputs) + ')' if inputs else ''} &middot; files {files} &middot; data file "
                       f"<code>{data}</code></div>")  # fmt: skip
        parts.append("<figcaption>" + "".join(caption) + "</figcaption></figure>")

    # Environment.
    env = result.get("environment") or {}
    parts.append('<h2 id="environment">Environment</h2>')
    env_rows = [([_e(k), _e(format_value(env.get(k)))], "") for k in
                ("python", "implementation", "platform", "machine", "cpu_count", "timestamp_utc")]  # fmt: skip
    env_rows += [([_e(k), _e(format_value(v))], "") for k, v in (env.get("versions") or {}).items()]
    parts.append(_html_table(["", "version / value"], env_rows))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def render_markdown(result: dict[str, Any]) -> str:
    """The report in Markdown (same content as :func:`render_html`; figures as links relative to the report)."""
    ok, status = _status_line(result)
    failed, errored = result.get("failed_checks") or [], result.get("errored_steps") or []
    steps = result.get("steps", [])
    lines = [
        "# robustdistill: reproduce",
        "",
        f"Command: `{result.get('command', '')}`; started {result.get('started_utc', '?')} (UTC); total "
        f"{_duration(float(result.get('seconds', 0)))}; {'full sizes (--full)' if result.get('full') else 'default sizes'}.",
        "",
        f"**{'OK' if ok else 'FAILED'}**: {status}.",
        "",
    ]
    if failed or errored:
        by_name = {s["name"]: s for s in steps}
        lines += ["## Failures", ""]
        lines += [f"- check **{n}** failed" for n in failed]
        lines += [f"- step **{n}** raised: `{markdown_cell(by_name[n].get('error'))}`" for n in errored]
        lines.append("")
    lines += ["## Steps and timings", ""]
    rows = [(s["name"], s["status"], _duration(float(s["seconds"])), s.get("error") or s.get("note") or "")
            for s in steps]  # fmt: skip
    rows.append(("**total**", "", f"**{_duration(float(result.get('seconds', 0)))}**", ""))
    lines += [format_markdown_table(["step", "status", "wall time", "detail"], rows), ""]

    lines += ["## Checks", ""]
    checks = result.get("checks")
    if checks is None:
        lines += ["verify did not run or did not finish.", ""]
    else:
        lines += [f"{len(checks) - len(failed)} of {len(checks)} hold.", ""]
        rows = [(c["name"], c.get("claim", ""), format_value(c.get("bound")), format_value(c.get("measured")),
                 format_value(c.get("interval")), "yes" if c.get("holds") else "**NO**") for c in checks]  # fmt: skip
        lines += [format_markdown_table(["check", "claim", "bound", "measured", "interval", "holds"], rows), ""]

    lines += ["## Benchmarks", ""]
    benches = result.get("benchmarks") or {}
    step_status = {s["name"]: s for s in steps}
    bench_steps = [s["name"] for s in steps if s.get("kind") == "bench"]
    if not bench_steps:
        lines += ["No benchmark ran.", ""]
    for name in bench_steps:
        bench, step = benches.get(name), step_status[name]
        lines += [f"### {name}", ""]
        if bench is None:
            lines += [f"did not finish: `{markdown_cell(step.get('error'))}`", ""]
            continue
        lines += [f"{bench.get('description', '')}. Wall time {_duration(float(step['seconds']))}; result "
                  f"`{Path(bench.get('json', '')).name}`.", ""]  # fmt: skip
        if bench.get("note"):
            lines += [f"Note: {bench['note']}.", ""]
        targets = _target_rows(bench)
        if targets:
            lines += [format_markdown_table(["target", "description", "bound", "measured", "met"],
                                [(r["target"], r["description"], r["bound"], format_value(r["measured"]), r["met"])
                                 for r in targets]), ""]  # fmt: skip
        lines += ["```text", str(bench.get("table", "")).replace("```", "'''"), "```", ""]

    lines += ["## Figures", ""]
    figures = result.get("figures") or []
    if not figures:
        lines += ["No figure was made.", ""]
    out = result.get("out", ".")
    for fig in figures:
        png = fig.get("png")
        lines.append(f"### {fig['name']}")
        lines.append("")
        if png:
            lines.append(f"![{fig['name']}]({_relative(png, out)})")
            lines.append("")
        if fig.get("description"):
            lines += [str(fig["description"]), ""]
        source, inputs, fallback = _provenance(fig)
        if fallback:
            lines += [f"Note: {QUICK_FIGURE_NOTE}", ""]
        files = ", ".join(f"`{_relative(f, out)}`" for f in fig.get("files", []))
        data = _relative(fig.get("data_path", ""), out)
        lines += [f"Data: {source}{' (' + inputs + ')' if inputs else ''}; files {files}; data file `{data}`.", ""]

    env = result.get("environment") or {}
    lines += ["## Environment", ""]
    env_rows = [(k, format_value(env.get(k))) for k in
                ("python", "implementation", "platform", "machine", "cpu_count", "timestamp_utc")]  # fmt: skip
    env_rows += [(k, format_value(v)) for k, v in (env.get("versions") or {}).items()]
    lines += [format_markdown_table(["", "version / value"], env_rows), ""]
    return "\n".join(lines)


def write_report(result: dict[str, Any], out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``OUT/reproduce.json``, ``OUT/index.html`` and ``OUT/summary.md`` atomically; return their paths."""
    out = Path(out)
    page, summary = render_html(result), render_markdown(result)
    return {
        "json": write_json_atomic(out / "reproduce.json", result),
        "html": write_atomic(out / "index.html", lambda fh: fh.write(page.encode("utf-8"))),
        "markdown": write_atomic(out / "summary.md", lambda fh: fh.write(summary.encode("utf-8"))),
    }

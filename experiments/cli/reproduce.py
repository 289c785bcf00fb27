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

``full=True`` (``--full``) runs the full simulator sizes (``run_checks(quick=False)``, about 6.5 min alone)
and the figures without the quick fallback (``make_figures(quick=False)``); a benchmark runs the larger setting
of :data:`FULL_BENCH_OPTIONS` where it has one (the accuracy grids with 10 seeds), otherwise its default grid,
and the report says which.

Report (after every step, so an interrupted run leaves one; written atomically): ``OUT/reproduce.json`` (the
result, :meth:`ReproduceResult.to_dict`), ``OUT/index.html`` (:func:`render_html`: one self-contained page,
figures inline as base64 PNG, so the file still works when moved) and ``OUT/summary.md``
(:func:`render_markdown`: figures as relative links). Both lead with a summary: checks held, benchmark targets
met, missed or not measured, steps skipped (with the reason) or raised; it is green only when every check holds,
every target is met and every step ran. Then the failures, the headline figure of each method
(:data:`HEADLINE_FIGURES`), and the details. Both renderers are pure functions of the result dict (plus the PNG
files it names), testable without running anything.

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
FULL_BENCH_OPTIONS: dict[str, dict[str, Any]] = {
    name: b.full_options for name, b in BENCHMARKS.items() if b.full_options
}
#: Wall seconds per step on the 2-core reference machine (default sizes, empty ``reports/``); ``verify`` with
#: ``full=True`` takes about 400 s instead. They weight the progress bar.
EXPECTED_SECONDS: dict[str, float] = {
    "verify": 15,
    **{n: b.expected_seconds for n, b in BENCHMARKS.items()},
    "figures": 60,
}
FULL_VERIFY_SECONDS = 400.0
QUICK_FIGURE_NOTE = (
    "made from a quick smoke run (seconds-long, not the benchmark's grid): the stored result it "
    "plots was missing (its step failed or was left out)."
)


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
    ``benchmarks``: name -> {"description", "json", "table" (its text table), "tables" (its JSON's row lists:
    [{"name", "columns", "rows"}]), "facts" (its single values and flat objects: [{"name", "items"}]),
    "targets", "targets_met", "seconds", "options", "note"}; ``figures``: [{"name", "description", "files", "png",
    "data_path", "source" ("stored" | "quick"), "inputs", "made_from" (grid and sizes of the stored results it
    read), "quick_grid" (one of them is a quick-grid result)}]; ``finished``: False in the partial report written
    after each step; ``exit_code``: 2 if a step raised, else 1 if a check failed, else 0."""

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


def _raw_inputs(data_path: Path) -> dict[str, Any]:
    """The ``inputs`` of a figure's data file (where its numbers came from), {} when it cannot be read."""
    try:
        inputs = json.loads(data_path.read_text(encoding="utf-8")).get("inputs") or {}
        return {str(k): v for k, v in dict(inputs).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _figure_inputs(data_path: Path) -> dict[str, str]:
    """Where a figure's numbers came from (the ``inputs`` of its data file), one short string each."""
    return {k: _shorten(v if isinstance(v, str) else json.dumps(v)) for k, v in _raw_inputs(data_path).items()}


def _shorten(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _is_quick(result: dict[str, Any]) -> bool:
    """Whether a stored benchmark result was made with ``quick=True`` (top level, or in its protocol)."""
    protocol = result.get("protocol")
    return bool(result.get("quick") or (isinstance(protocol, dict) and protocol.get("quick") is True))


def _distinct(rows: list[Any], column: str, limit: int = 8) -> str | None:
    values = list(dict.fromkeys(str(r[column]) for r in rows if isinstance(r, dict) and r.get(column) is not None))
    if not values:
        return None
    return ", ".join(values[:limit]) + (f", ... ({len(values)} values)" if len(values) > limit else "")


def _bench_sizes(path: Path, result: dict[str, Any]) -> str:
    """``bench_distill.json: default grid, 3 seeds, dataset digits, ..., 39 rows``."""
    grid = (
        "quick grid (quick=True)"
        if _is_quick(result)
        else "full setting (--full)"
        if result.get("full")
        else "default grid"
    )
    parts = [f"{path.name}: {grid}"]
    seeds = result.get("seeds")
    if isinstance(seeds, (list, int)) and not isinstance(seeds, bool):
        parts.append(f"{len(seeds) if isinstance(seeds, list) else seeds} seeds")
    rows = result.get("rows") if isinstance(result.get("rows"), list) else []
    for column in ("dataset", "student", "labeled", "n", "d"):
        values = _distinct(rows, column)
        if values:
            parts.append(f"{column} {values}")
    if rows:
        parts.append(f"{len(rows)} rows")
    return ", ".join(parts)


def _check_size(name: str, quick: bool) -> Any:
    """The size simulator check ``name`` runs at (quick or full), None when there is no such check."""
    from robustdistill.theory.simulators import CHECKS

    return next((c.quick if quick else c.full for c in CHECKS if c.name == name), None)


def _check_sizes(path: Path) -> str:
    """``simulator check R1 at its quick size (...), size instances 300, curve_n 2000`` for ``data/R1.json``, from
    ``verify.json`` beside ``data/``."""
    verify = _read_json(path.parent.parent / "verify.json") or {}
    quick = bool(verify.get("quick", True))
    size = _check_size(path.stem, quick)
    which = "quick size (the default; --full runs the full sizes)" if quick else "full size (--full)"
    return f"simulator check {path.stem} at its {which}" + (f", size {_size_text(size)}" if size else "")


def _size_text(size: Any) -> str:
    """A check's size argument in words: ``instances 300, curve_n 2000``, ``[30, 5, 3]``, ``60``."""
    if isinstance(size, dict):
        return _shorten(", ".join(f"{k} {format_value(v)}" for k, v in size.items()), 100)
    return _shorten(format_value(list(size) if isinstance(size, tuple) else size), 100)


def _made_from(inputs: dict[str, Any]) -> tuple[list[str], bool]:
    """What a figure's stored inputs were made from (grid and sizes, one line each) and whether one of them is a
    quick-grid result."""
    lines, quick = [], False
    for value in inputs.values():
        path = Path(value) if isinstance(value, str) and value.endswith(".json") else None
        if path is None or not path.is_file():
            continue
        result = _read_json(path)
        if path.name.startswith("bench_") and result is not None:
            lines.append(_bench_sizes(path, result))
            quick = quick or _is_quick(result)
        elif path.parent.name == "data":
            lines.append(_check_sizes(path))
    return lines, quick


def _figure_record(fig: Any, description: str) -> dict[str, Any]:
    files = [str(p) for p in fig.files]
    raw = _raw_inputs(Path(fig.data_path))
    made_from, quick_grid = _made_from(raw)
    return {
        "name": str(fig.name),
        "description": description,
        "files": files,
        "png": next((p for p in files if p.lower().endswith(".png")), None),
        "data_path": str(fig.data_path),
        "source": str(fig.source),
        "inputs": _figure_inputs(Path(fig.data_path)),
        "made_from": made_from,
        "quick_grid": quick_grid,
    }


def _run_figures(out: Path, full: bool, on_figure: Callable[[str], None]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every figure, one ``make_figures`` call each so that one failing figure costs only itself; returns the
    figures made and one ``NAME: error`` line per failure."""
    api = _figures_api()
    made, failed = [], []
    descriptions = api.FIGURES if isinstance(api.FIGURES, dict) else {}
    for name in _figure_names(api):
        on_figure(name)
        try:
            figures = api.make_figures(names=[name], out=out / "figures", results=out, quick=not full, progress=False)
        except Exception as exc:  # noqa: BLE001 - recorded, the other figures go on
            failed.append(f"{name}: {type(exc).__name__}: {' '.join(str(exc).split())}")
            continue
        made += [_figure_record(fig, str(descriptions.get(fig.name, ""))) for fig in figures]
    return made, failed


#: Top-level keys of a benchmark result that its report section does not tabulate (targets have their own table).
BENCH_KEYS_NOT_TABULATED = ("targets", "targets_met", "environment")
#: A list cell with more values shows its first three and its length (the JSON file has them all).
LIST_CELL_VALUES = 6


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _flat(value: Any) -> Any:
    """One table cell from a JSON value: scalars as they are, short lists of scalars as lists, anything larger as
    a short description of its shape."""
    if isinstance(value, str):
        return _shorten(value, 120)
    if _scalar(value):
        return value
    if isinstance(value, dict):
        if all(not isinstance(v, dict) for v in value.values()):
            return _shorten(", ".join(f"{k}: {format_value(v)}" for k, v in value.items()), 80)
        return f"{len(value)} entries"
    values = list(value)
    if all(_scalar(v) for v in values):
        if len(values) <= LIST_CELL_VALUES:
            return values
        return f"[{', '.join(format_value(v) for v in values[:3])}, ... ({len(values)} values)]"
    if all(isinstance(v, list) for v in values):
        return f"{len(values)} x {len(values[0]) if values else 0} values"
    return f"{len(values)} records"


def _table_from(name: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"name", "columns", "rows"}``: every key of the records (first-seen order) except all-empty ones."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    rows = [[_flat(r.get(c)) for c in columns] for r in records]
    keep = [j for j in range(len(columns)) if any(row[j] is not None for row in rows)]
    return {"name": name, "columns": [columns[j] for j in keep], "rows": [[row[j] for j in keep] for row in rows]}


def _records(value: Any) -> list[dict[str, Any]] | None:
    """A JSON value as table rows: a list of objects, or an object of flat objects (its keys as a first column)."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    flat = isinstance(value, dict) and value and all(isinstance(v, dict) and v for v in value.values())
    if flat and all(not isinstance(x, dict) for v in value.values() for x in v.values()):
        return [{"key": k, **v} for k, v in value.items()]
    return None


def _json_tables(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The benchmark result's row lists (and objects of flat objects) as tables, in the result's order."""
    tables = []
    for key, value in result.items():
        records = None if key in BENCH_KEYS_NOT_TABULATED else _records(value)
        if records:
            tables.append(_table_from(key, records))
    return tables


def _json_facts(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The result's single values (``{"name": "", ...}`` first) and its flat objects, one ``{"name", "items"}``
    each: what a benchmark's text table prints above and below its rows."""
    loose = [[k, _flat(v)] for k, v in result.items() if _scalar(v) and k not in BENCH_KEYS_NOT_TABULATED]
    facts = [{"name": "", "items": loose}] if loose else []
    for key, value in result.items():
        if key in BENCH_KEYS_NOT_TABULATED or not isinstance(value, dict) or not value or _records(value):
            continue
        if all(not isinstance(v, dict) or not any(isinstance(x, dict) for x in v.values()) for v in value.values()):
            facts.append({"name": key, "items": [[k, _flat(v)] for k, v in value.items()]})
    return facts


def _bench_record(
    name: str, result: dict[str, Any], table: str, path: Path, options: dict[str, Any], note: str | None
) -> dict[str, Any]:
    return {
        "description": BENCHMARKS[name].help,
        "json": str(path),
        "table": table,
        "tables": _json_tables(result),
        "facts": _json_facts(result),
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
        full: the full simulator sizes and the benchmarks' larger settings where they exist.
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
            out=str(out),
            full=full,
            seed=seed,
            command=command,
            started_utc=started_utc,
            seconds=time.perf_counter() - started,
            steps=tuple(state["steps"]),
            checks=None if state["checks"] is None else tuple(state["checks"]),
            benchmarks=dict(state["benchmarks"]),
            figures=tuple(state["figures"]),
            environment=environment,
            finished=finished,
        )

    bar = tqdm(
        total=sum(expected.values()),
        desc="reproduce",
        file=sys.stderr,
        disable=not progress,
        leave=True,
        bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed} elapsed, ~{remaining} left",
    )
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
                    result, table, path = jobs.run_bench(
                        name, out_dir, seed=seed, quick=False, progress=False, **options
                    )
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

#: Banner colours of the summary (also read by the browser test): every check holds, every target is met and
#: every step ran / nothing failed but something was not measured (a skipped step, a target without a
#: measurement, verify not run, a partial report) / a check failed, a target was missed or a step raised.
STATUS_COLOURS: dict[str, str] = {"ok": "#cdeccf", "incomplete": "#ffe8a8", "fail": "#f9c9c9"}
#: The headline figure of each method, shown near the top: (method, figure-name prefix, preferred figures); the
#: first preferred figure that was made, else the first made figure with the prefix.
HEADLINE_FIGURES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("RAD", "rad_", ("rad_active_curves", "rad_worst_case")),
    ("Weighted", "weighted_", ("weighted_ablation", "weighted_weights")),
    ("SLaM", "slam_", ("slam_accuracy_vs_labels", "slam_sample_complexity")),
)
STORED_QUICK_NOTE = (
    "made from a stored quick-grid result (quick=True: a seconds-long smoke run, not the benchmark's default grid)."
)
#: A table of a benchmark's JSON with more rows starts folded.
FOLD_ROWS = 30

_CSS = f"""
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }}
h1 {{ margin-bottom: 0.2rem; }} h2 {{ border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2.2rem; }}
code, pre {{ font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.85rem; }}
pre {{ background: #f6f8fa; padding: 0.8rem; overflow-x: auto; border-radius: 4px; }}
table {{ border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
tr.fail td, tr.error td {{ background: #fde2e2; }} tr.notmet td {{ background: #fff4d6; }}
.status {{ padding: 0.7rem 1rem; border-radius: 4px; margin: 1rem 0; }}
.status .headline {{ font-weight: 700; font-size: 1.1rem; margin: 0 0 0.3rem; }}
.status ul {{ margin: 0; padding-left: 1.3rem; }}
.status.ok {{ background: {STATUS_COLOURS["ok"]}; }} .status.fail {{ background: {STATUS_COLOURS["fail"]}; }}
.status.incomplete {{ background: {STATUS_COLOURS["incomplete"]}; }}
.problems {{ background: #fff0f0; border: 1px solid #f3b5b5; border-radius: 4px; padding: 0.5rem 1.5rem; }}
.problems h2 {{ margin-top: 0.6rem; }}
.headlines {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(20rem, 1fr)); gap: 1rem; }}
.headlines figure {{ margin: 0; }} .headlines img {{ width: 100%; cursor: zoom-in; }}
.headlines img:focus {{ position: fixed; inset: 2vh 2vw; width: 96vw; height: 96vh; object-fit: contain;
                       background: #fff; border: 1px solid #999; z-index: 10; cursor: zoom-out; outline: none; }}
figure {{ margin: 1.2rem 0; }} figure img {{ max-width: 100%; height: auto; border: 1px solid #eee; }}
figcaption {{ font-size: 0.85rem; color: #555; }} .note {{ color: #8a5a00; }} .muted {{ color: #666; }}
.wide {{ max-width: 100%; overflow-x: auto; }} .wide table {{ font-size: 0.8rem; }}
.facts {{ font-size: 0.85rem; color: #444; margin: 0.3rem 0; }}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Any) -> str:
    return _e(format_value(value))


def _html_table(header: Sequence[str], rows: Iterable[tuple[Sequence[str], str]], numeric: Sequence[bool] = ()) -> str:
    """``rows``: (already escaped cells, row class). A header may break after an underscore."""
    numeric = list(numeric) + [False] * (len(header) - len(numeric))
    heads = "".join(f"<th>{_e(h).replace('_', '_<wbr>')}</th>" for h in header)
    lines = ["<table>", f"<thead><tr>{heads}</tr></thead>", "<tbody>"]
    for cells, cls in rows:
        attr = f' class="{cls}"' if cls else ""
        tds = "".join(f'<td class="num">{c}</td>' if num else f"<td>{c}</td>" for c, num in zip(cells, numeric))
        lines.append(f"<tr{attr}>{tds}</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)


# Summary: what the reader needs first.


def _target_outcomes(result: dict[str, Any]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Every benchmark target as (benchmark, target, its record), under ``met``, ``missed`` or ``unmeasured``."""
    out: dict[str, list[tuple[str, str, dict[str, Any]]]] = {"met": [], "missed": [], "unmeasured": []}
    for bench_name, bench in (result.get("benchmarks") or {}).items():
        met = bench.get("targets_met") or {}
        for target, record in (bench.get("targets") or {}).items():
            out[{True: "met", False: "missed"}.get(met.get(target), "unmeasured")].append((bench_name, target, record))
    return out


def _checks_line(result: dict[str, Any]) -> str:
    failed, ran = result.get("failed_checks") or [], [s["name"] for s in result.get("steps", [])]
    if result.get("checks") is not None:
        n = len(result["checks"])
        return f"{n - len(failed)} of {n} checks hold" + (f" (failed: {', '.join(failed)})" if failed else "")
    return "checks: verify did not finish" if "verify" in ran else "checks: verify not run"


def _targets_line(outcomes: dict[str, list[Any]]) -> str:
    met, missed, unmeasured = (outcomes[k] for k in ("met", "missed", "unmeasured"))
    if not (met or missed or unmeasured):
        return "benchmark targets: none (no benchmark with targets ran)"
    line = f"benchmark targets: {len(met)} met, {len(missed)} missed, {len(unmeasured)} not measured"
    named = [
        f"{label}: " + ", ".join(f"{b}/{t}" for b, t, _ in group)
        for label, group in (("missed", missed), ("not measured", unmeasured))
        if group
    ]
    return line + (f" ({'; '.join(named)})" if named else "")


def _summary_lines(result: dict[str, Any], outcomes: dict[str, list[Any]]) -> list[str]:
    """The summary's count lines: checks, targets, steps, each skipped step with its reason, the exit code."""
    steps, errored = result.get("steps", []), result.get("errored_steps") or []
    lines = [
        _checks_line(result),
        _targets_line(outcomes),
        f"{len(steps) - len(errored)} of {len(steps)} steps ran without error"
        + (f" (raised: {', '.join(errored)})" if errored else ""),
    ]
    lines += [
        f"skipped: {s['name']}: {s.get('note') or 'no reason recorded'}" for s in steps if s["status"] == "skipped"
    ]
    if not result.get("finished", True):
        lines.append("still running (partial report)")
    code = result.get("exit_code", "?")
    return lines + [f"exit code {code} (missed benchmark targets are reported, they do not change it)"]


def _verdict(result: dict[str, Any], outcomes: dict[str, list[Any]]) -> tuple[str, str]:
    """(level, headline): ``fail`` when a check failed, a target was missed or a step raised; else
    ``incomplete`` when a step was skipped, a target not measured, the checks not run or the report is partial;
    else ``ok``."""
    failed, errored = result.get("failed_checks") or [], result.get("errored_steps") or []
    skipped = [s for s in result.get("steps", []) if s["status"] == "skipped"]
    problems = [
        f"{len(failed)} check(s) failed" if failed else "",
        f"{len(outcomes['missed'])} benchmark target(s) missed" if outcomes["missed"] else "",
        f"{len(errored)} step(s) raised" if errored else "",
    ]
    if any(problems):
        return "fail", "FAILED: " + "; ".join(p for p in problems if p)
    gaps = [
        f"{len(skipped)} step(s) skipped" if skipped else "",
        f"{len(outcomes['unmeasured'])} target(s) not measured" if outcomes["unmeasured"] else "",
        "checks not run" if result.get("checks") is None else "",
        "partial report" if not result.get("finished", True) else "",
    ]
    if any(gaps):
        return "incomplete", "INCOMPLETE: nothing failed, but " + "; ".join(g for g in gaps if g)
    return "ok", "OK: every check holds, every benchmark target is met and every step ran"


def _summary(result: dict[str, Any]) -> tuple[str, str, list[str]]:
    """(level ``ok`` | ``incomplete`` | ``fail``, a one-line headline, the count lines below it). ``ok`` only when
    every check holds, every benchmark target is met and every step ran without error or skip."""
    outcomes = _target_outcomes(result)
    return (*_verdict(result, outcomes), _summary_lines(result, outcomes))


def _target_rows(bench: dict[str, Any]) -> list[dict[str, Any]]:
    met = bench.get("targets_met") or {}
    rows = []
    for name, t in (bench.get("targets") or {}).items():
        bound = t.get("bound")
        rows.append(
            {
                "target": name,
                "description": t.get("description", ""),
                "bound": ("<= " if t.get("kind") == "max" else ">= ") + format_value(bound)
                if bound is not None
                else "-",
                "measured": t.get("measured"),
                "met": {True: "met", False: "MISSED", None: "not measured"}[met.get(name)],
            }
        )
    return rows


def _target_counts(bench: dict[str, Any]) -> str:
    met = bench.get("targets_met") or {}
    if not met:
        return "no targets"
    return (
        f"targets: {sum(v is True for v in met.values())} met, {sum(v is False for v in met.values())} missed, "
        f"{sum(v is None for v in met.values())} not measured"
    )


def _missed_lines(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(benchmark, target, ``measured X, bound <= Y``) for every missed target."""
    out = []
    for bench_name, target, record in _target_outcomes(result)["missed"]:
        bound = ("<= " if record.get("kind") == "max" else ">= ") + format_value(record.get("bound"))
        out.append((bench_name, target, f"measured {format_value(record.get('measured'))}, bound {bound}"))
    return out


# Checks: the comparator beside the bound when the record has one.

_OPERATORS = ("<=", ">=", "<", ">", "==")


def _requirement(check: dict[str, Any]) -> str | None:
    """``measured <= 1e-09`` from a check record's ``comparator`` (``<=``, ``>=``, ``<``, ``>``, ``==``; ``in``:
    the bound lies in the interval; other text is printed before the bound); None when it has none."""
    comparator, bound = check.get("comparator"), format_value(check.get("bound"))
    if not comparator:
        return None
    if comparator in _OPERATORS:
        return f"measured {comparator} {bound}"
    if comparator == "in":
        return f"{bound} in interval"
    return f"{comparator} {bound}"


def _comparator_note(checks: Sequence[dict[str, Any]]) -> str | None:
    missing = sum(not c.get("comparator") for c in checks)
    if not missing:
        return None
    return (
        f"{missing} of {len(checks)} check records carry no comparator: their bound is shown bare, and the claim "
        "beside it says which side of the bound the measurement is held to."
    )


# Figures: where each one's data came from, and the headline figure of each method.


def _provenance(fig: dict[str, Any]) -> dict[str, Any]:
    """``source`` (where the data came from), ``inputs`` (one line), ``made_from`` (grid and sizes of the stored
    results, one line each) and ``note`` (set when the data is a quick run: a fallback for a missing result, or a
    stored quick-grid result)."""
    inputs = fig.get("inputs") or {}
    names = {"stored": "stored results", "quick": "computed by the figure script"}
    fallback = any("quick=True" in str(v) for v in inputs.values())
    note = QUICK_FIGURE_NOTE if fallback else STORED_QUICK_NOTE if fig.get("quick_grid") else None
    return {
        "source": names.get(str(fig.get("source", "")), str(fig.get("source", ""))),
        "inputs": "; ".join(f"{k}: {v}" for k, v in inputs.items()),
        "made_from": list(fig.get("made_from") or []),
        "note": note,
    }


def _data_line(fig: dict[str, Any]) -> str:
    """``stored results (R1: ...); made from: simulator check R1 at its quick size, ...`` (plain text)."""
    p = _provenance(fig)
    line = p["source"] + (f" ({p['inputs']})" if p["inputs"] else "")
    return line + ("; made from: " + "; ".join(p["made_from"]) if p["made_from"] else "")


def _headlines(figures: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(method, figure) for each method of :data:`HEADLINE_FIGURES` that has a figure."""
    by_name = {str(f["name"]): f for f in figures}
    out = []
    for method, prefix, preferred in HEADLINE_FIGURES:
        name = next((n for n in preferred if n in by_name), None)
        name = name or next((n for n in by_name if n.startswith(prefix)), None)
        if name:
            out.append((method, by_name[name]))
    return out


# HTML sections.


def _html_summary(result: dict[str, Any]) -> list[str]:
    level, headline, lines = _summary(result)
    items = "".join(f"<li>{_e(line)}</li>" for line in lines)
    head = f'<section id="summary" class="status {level}"><p class="headline">{_e(headline)}</p>'
    return [f"{head}<ul>{items}</ul></section>"]


def _html_problems(result: dict[str, Any]) -> list[str]:
    failed, errored = result.get("failed_checks") or [], result.get("errored_steps") or []
    missed = _missed_lines(result)
    if not (failed or errored or missed):
        return []
    items = [f'<li>check <a href="#check-{_e(n)}"><strong>{_e(n)}</strong></a> failed</li>' for n in failed]
    items += [
        f'<li>benchmark target <strong>{_e(t)}</strong> of <a href="#bench-{_e(b)}">{_e(b)}</a> missed: '
        f"{_e(detail)}</li>"
        for b, t, detail in missed
    ]
    by_name = {s["name"]: s for s in result.get("steps", [])}
    items += [
        f"<li>step <strong>{_e(n)}</strong> raised: <code>{_e(by_name[n].get('error'))}</code></li>" for n in errored
    ]
    return ['<div class="problems"><h2 id="problems">Failures</h2>', "<ul>", *items, "</ul></div>"]


def _html_nav(headlines: bool) -> str:
    links = [("headlines", "Headline figures")] if headlines else []
    links += [
        ("steps", "Steps"),
        ("checks", "Checks"),
        ("benchmarks", "Benchmarks"),
        ("figures", "Figures"),
        ("environment", "Environment"),
    ]
    return "<p>" + " &middot; ".join(f'<a href="#{a}">{t}</a>' for a, t in links) + "</p>"


def _html_steps(result: dict[str, Any]) -> list[str]:
    steps, rows = result.get("steps", []), []
    for s in steps:
        detail = s.get("error") or s.get("note") or ""
        rows.append(
            (
                [_e(s["name"]), _e(s["status"]), _e(_duration(float(s["seconds"]))), _e(detail)],
                {"error": "error", "failed": "fail", "skipped": "notmet"}.get(s["status"], ""),
            )
        )
    total = _e(_duration(float(result.get("seconds", 0))))
    rows.append((["<strong>total</strong>", "", f"<strong>{total}</strong>", ""], ""))
    parts = [
        '<h2 id="steps">Steps and timings</h2>',
        _html_table(["step", "status", "wall time", "detail"], rows, [False, False, True]),
    ]
    parts += [
        f"<details><summary>traceback of {_e(s['name'])}</summary><pre>{_e(s['traceback'])}</pre></details>"
        for s in steps
        if s.get("traceback")
    ]
    return parts


def _html_checks(result: dict[str, Any]) -> list[str]:
    parts, checks = ['<h2 id="checks">Checks</h2>'], result.get("checks")
    if checks is None:
        return parts + ['<p class="muted">verify did not run or did not finish.</p>']
    failed = result.get("failed_checks") or []
    rows = [
        (
            [
                f'<span id="check-{_e(c["name"])}">{_e(c["name"])}</span>',
                _e(c.get("claim", "")),
                _e(_requirement(c) or format_value(c.get("bound"))),
                _cell(c.get("measured")),
                _cell(c.get("interval")),
                "yes" if c.get("holds") else "<strong>NO</strong>",
            ],
            "" if c.get("holds") else "fail",
        )
        for c in checks
    ]
    parts.append(f"<p>{len(checks) - len(failed)} of {len(checks)} hold.</p>")
    note = _comparator_note(checks)
    if note:
        parts.append(f'<p class="muted">{_e(note)}</p>')
    parts.append(
        _html_table(
            ["check", "claim", "bound", "measured", "interval", "holds"], rows, [False, False, True, True, False, False]
        )
    )
    return parts


def _numeric_column(rows: Sequence[Sequence[Any]], j: int) -> bool:
    values = [r[j] for r in rows if r[j] is not None]
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _html_json_table(table: dict[str, Any]) -> str:
    columns, rows = table["columns"], table["rows"]
    numeric = [_numeric_column(rows, j) for j in range(len(columns))]
    body = _html_table(columns, [([_cell(c) for c in row], "") for row in rows], numeric)
    title = f"<code>{_e(table['name'])}</code> ({len(rows)} row{'s' if len(rows) != 1 else ''})"
    if len(rows) > FOLD_ROWS:
        return f'<details><summary>{title}</summary><div class="wide">{body}</div></details>'
    return f'<p class="facts">{title}</p><div class="wide">{body}</div>'


def _html_facts(facts: Sequence[dict[str, Any]]) -> list[str]:
    out = []
    for fact in facts:
        items = " &middot; ".join(f"{_e(k)} <strong>{_cell(v)}</strong>" for k, v in fact["items"])
        name = f"<code>{_e(fact['name'])}</code>: " if fact["name"] else ""
        out.append(f'<p class="facts">{name}{items}</p>')
    return out


def _html_bench(name: str, bench: dict[str, Any] | None, step: dict[str, Any], out: str) -> list[str]:
    parts = [f'<h3 id="bench-{_e(name)}">{_e(name)}</h3>']
    if bench is None:
        if step.get("status") == "skipped":
            return parts + [f'<p class="note">skipped: {_e(step.get("note"))}</p>']
        return parts + [f'<p class="note">did not finish: <code>{_e(step.get("error"))}</code></p>']
    json_path = bench.get("json", "")
    parts.append(
        f"<p>{_e(bench.get('description', ''))}. {_e(_target_counts(bench))}; wall time "
        f'{_e(_duration(float(step["seconds"])))}; result <a href="{_e(_relative(json_path, out))}">'
        f"<code>{_e(Path(json_path).name)}</code></a>.</p>"
    )
    if bench.get("note"):
        parts.append(f'<p class="note">{_e(bench["note"])}</p>')
    rows = [
        (
            [_e(r["target"]), _e(r["description"]), _e(r["bound"]), _cell(r["measured"]), _e(r["met"])],
            {"MISSED": "fail", "not measured": "notmet"}.get(r["met"], ""),
        )
        for r in _target_rows(bench)
    ]
    if rows:
        parts.append(
            _html_table(["target", "description", "bound", "measured", "met"], rows, [False, False, False, True, False])
        )
    parts += _html_facts(bench.get("facts") or [])
    parts += [_html_json_table(t) for t in bench.get("tables") or []]
    opened = "" if bench.get("tables") else " open"
    parts.append(
        f"<details{opened}><summary>console output (<code>{_e(jobs.PROG)} bench {_e(name)}</code>)</summary>"
        f"<pre>{_e(bench.get('table', ''))}</pre></details>"
    )
    return parts


def _html_benchmarks(result: dict[str, Any]) -> list[str]:
    parts, steps = ['<h2 id="benchmarks">Benchmarks</h2>'], result.get("steps", [])
    names = [s["name"] for s in steps if s.get("kind") == "bench"]
    if not names:
        parts.append('<p class="muted">No benchmark ran.</p>')
    by_name, benches = {s["name"]: s for s in steps}, result.get("benchmarks") or {}
    for name in names:
        parts += _html_bench(name, benches.get(name), by_name[name], result.get("out", "."))
    return parts


def _html_figure(fig: dict[str, Any], out: str, method: str | None = None) -> str:
    png, name = fig.get("png"), fig["name"]
    parts = [f'<figure id="figure-{_e(name)}">']
    if png and Path(png).is_file():
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        zoom = ' tabindex="0" title="click to enlarge"' if method else ""  # the headlines' CSS enlarges on focus
        parts.append(f'<img src="data:image/png;base64,{data}" alt="{_e(name)}"{zoom}>')
    else:
        parts.append(f'<p class="note">PNG missing: {_e(png)}</p>')
    title = f"{method}: {name}" if method else name
    caption = [
        f"<div><strong>{_e(title)}</strong>"
        + (f" &middot; {_e(fig['description'])}" if fig.get("description") else "")
        + "</div>"
    ]
    note = _provenance(fig)["note"]
    if note:
        caption.append(f'<div class="note">{_e(note)}</div>')
    files = ", ".join(f"<code>{_e(_relative(f, out))}</code>" for f in fig.get("files", []))
    caption.append(f"<div>data: {_e(_data_line(fig))}</div>")
    caption.append(
        f'<div class="muted">files {files} &middot; data file '
        f"<code>{_e(_relative(fig.get('data_path', ''), out))}</code></div>"
    )
    return "\n".join(parts) + "<figcaption>" + "".join(caption) + "</figcaption></figure>"


def _html_headlines(result: dict[str, Any]) -> list[str]:
    headlines = _headlines(result.get("figures") or [])
    if not headlines:
        return []
    out = result.get("out", ".")
    return [
        '<h2 id="headlines">Headline figures</h2>',
        '<div class="headlines">',
        *[_html_figure(fig, out, method) for method, fig in headlines],
        "</div>",
    ]


def _html_figures(result: dict[str, Any]) -> list[str]:
    parts, figures, out = ['<h2 id="figures">Figures</h2>'], result.get("figures") or [], result.get("out", ".")
    if not figures:
        return parts + ['<p class="muted">No figure was made.</p>']
    headlines = _headlines(figures)
    if headlines:
        links = ", ".join(f'{_e(m)}: <a href="#figure-{_e(f["name"])}">{_e(f["name"])}</a>' for m, f in headlines)
        parts.append(f'<p class="muted">The headline figures are at the top ({links}).</p>')
    shown = {id(f) for _, f in headlines}
    return parts + [_html_figure(fig, out) for fig in figures if id(fig) not in shown]


def _html_environment(result: dict[str, Any]) -> list[str]:
    env = result.get("environment") or {}
    rows = [
        ([_e(k), _e(format_value(env.get(k)))], "")
        for k in ("python", "implementation", "platform", "machine", "cpu_count", "timestamp_utc")
    ]
    rows += [([_e(k), _e(format_value(v))], "") for k, v in (env.get("versions") or {}).items()]
    return ['<h2 id="environment">Environment</h2>', _html_table(["", "version / value"], rows)]


def _relative(path: str, out: str) -> str:
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(out))
    return Path(rel).as_posix()


def render_html(result: dict[str, Any]) -> str:
    """The report as one self-contained HTML page: a summary (checks held, benchmark targets met or missed, steps
    run or skipped; green only when all hold, all are met and every step ran) and the failures at the top, then
    the headline figure of each method, the steps with timings, the checks, one section per benchmark (its JSON
    rows as tables), the other figures inline (base64 PNG) with their provenance, versions. Every text is escaped.
    A small inline script records load errors and the images' natural widths on ``<body data-errors
    data-images>`` (read by the headless-browser test)."""
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
        f"{_e(result.get('started_utc', '?'))} (UTC) &middot; total {_e(_duration(float(result.get('seconds', 0))))}"
        f"{' &middot; full sizes (--full)' if result.get('full') else ' &middot; default sizes'}</p>",
        *_html_summary(result),
        *_html_problems(result),
        _html_nav(bool(_headlines(result.get("figures") or []))),
        *_html_headlines(result),
        *_html_steps(result),
        *_html_checks(result),
        *_html_benchmarks(result),
        *_html_figures(result),
        *_html_environment(result),
        "</body></html>\n",
    ]
    return "\n".join(parts)


# Markdown sections: the same content.


def _md_summary(result: dict[str, Any]) -> list[str]:
    _, headline, lines = _summary(result)
    return [f"**{headline}**", "", *[f"- {line}" for line in lines], ""]


def _md_problems(result: dict[str, Any]) -> list[str]:
    failed, errored = result.get("failed_checks") or [], result.get("errored_steps") or []
    missed = _missed_lines(result)
    if not (failed or errored or missed):
        return []
    by_name = {s["name"]: s for s in result.get("steps", [])}
    lines = ["## Failures", ""]
    lines += [f"- check **{n}** failed" for n in failed]
    lines += [f"- benchmark target **{t}** of {b} missed: {detail}" for b, t, detail in missed]
    lines += [f"- step **{n}** raised: `{markdown_cell(by_name[n].get('error'))}`" for n in errored]
    return lines + [""]


def _md_figure(fig: dict[str, Any], out: str, method: str | None = None) -> list[str]:
    lines = [f"### {method + ': ' if method else ''}{fig['name']}", ""]
    if fig.get("png"):
        lines += [f"![{fig['name']}]({_relative(fig['png'], out)})", ""]
    if fig.get("description"):
        lines += [str(fig["description"]), ""]
    note = _provenance(fig)["note"]
    if note:
        lines += [f"Note: {note}", ""]
    files = ", ".join(f"`{_relative(f, out)}`" for f in fig.get("files", []))
    data = _relative(fig.get("data_path", ""), out)
    return lines + [f"Data: {_data_line(fig)}; files {files}; data file `{data}`.", ""]


def _md_headlines(result: dict[str, Any]) -> list[str]:
    headlines = _headlines(result.get("figures") or [])
    if not headlines:
        return []
    out = result.get("out", ".")
    return ["## Headline figures", "", *[line for m, f in headlines for line in _md_figure(f, out, m)]]


def _md_steps(result: dict[str, Any]) -> list[str]:
    rows = [
        (s["name"], s["status"], _duration(float(s["seconds"])), s.get("error") or s.get("note") or "")
        for s in result.get("steps", [])
    ]
    rows.append(("**total**", "", f"**{_duration(float(result.get('seconds', 0)))}**", ""))
    return ["## Steps and timings", "", format_markdown_table(["step", "status", "wall time", "detail"], rows), ""]


def _md_checks(result: dict[str, Any]) -> list[str]:
    checks, failed = result.get("checks"), result.get("failed_checks") or []
    if checks is None:
        return ["## Checks", "", "verify did not run or did not finish.", ""]
    lines = ["## Checks", "", f"{len(checks) - len(failed)} of {len(checks)} hold.", ""]
    note = _comparator_note(checks)
    if note:
        lines += [note, ""]
    rows = [
        (
            c["name"],
            c.get("claim", ""),
            _requirement(c) or format_value(c.get("bound")),
            format_value(c.get("measured")),
            format_value(c.get("interval")),
            "yes" if c.get("holds") else "**NO**",
        )
        for c in checks
    ]
    return lines + [format_markdown_table(["check", "claim", "bound", "measured", "interval", "holds"], rows), ""]


def _md_bench(name: str, bench: dict[str, Any] | None, step: dict[str, Any], out: str) -> list[str]:
    lines = [f"### {name}", ""]
    if bench is None:
        if step.get("status") == "skipped":
            return lines + [f"Skipped: {step.get('note')}", ""]
        return lines + [f"did not finish: `{markdown_cell(step.get('error'))}`", ""]
    json_path = bench.get("json", "")
    wall = _duration(float(step["seconds"]))
    link = f"[`{Path(json_path).name}`]({_relative(json_path, out)})"
    lines += [f"{bench.get('description', '')}. {_target_counts(bench)}; wall time {wall}; result {link}.", ""]
    if bench.get("note"):
        lines += [f"Note: {bench['note']}.", ""]
    targets = _target_rows(bench)
    if targets:
        lines += [
            format_markdown_table(
                ["target", "description", "bound", "measured", "met"],
                [(r["target"], r["description"], r["bound"], format_value(r["measured"]), r["met"]) for r in targets],
            ),
            "",
        ]
    for fact in bench.get("facts") or []:
        items = "; ".join(f"{k} {format_value(v)}" for k, v in fact["items"])
        lines += [f"{'`' + fact['name'] + '`: ' if fact['name'] else ''}{items}", ""]
    for table in bench.get("tables") or []:
        rows = [[format_value(c) for c in row] for row in table["rows"]]
        lines += [f"`{table['name']}` ({len(rows)} rows)", "", format_markdown_table(table["columns"], rows), ""]
    text = str(bench.get("table", "")).replace("```", "'''")
    return lines + [
        f"<details><summary>console output ({jobs.PROG} bench {name})</summary>",
        "",
        "```text",
        text,
        "```",
        "",
        "</details>",
        "",
    ]


def _md_benchmarks(result: dict[str, Any]) -> list[str]:
    steps, benches = result.get("steps", []), result.get("benchmarks") or {}
    names = [s["name"] for s in steps if s.get("kind") == "bench"]
    lines = ["## Benchmarks", ""] + ([] if names else ["No benchmark ran.", ""])
    by_name = {s["name"]: s for s in steps}
    for name in names:
        lines += _md_bench(name, benches.get(name), by_name[name], result.get("out", "."))
    return lines


def _md_figures(result: dict[str, Any]) -> list[str]:
    figures, out = result.get("figures") or [], result.get("out", ".")
    if not figures:
        return ["## Figures", "", "No figure was made.", ""]
    headlines = _headlines(figures)
    lines = ["## Figures", ""]
    if headlines:
        lines += [
            "The headline figures are at the top (" + ", ".join(f"{m}: {f['name']}" for m, f in headlines) + ").",
            "",
        ]
    shown = {id(f) for _, f in headlines}
    return lines + [line for fig in figures if id(fig) not in shown for line in _md_figure(fig, out)]


def _md_environment(result: dict[str, Any]) -> list[str]:
    env = result.get("environment") or {}
    rows = [
        (k, format_value(env.get(k)))
        for k in ("python", "implementation", "platform", "machine", "cpu_count", "timestamp_utc")
    ]
    rows += [(k, format_value(v)) for k, v in (env.get("versions") or {}).items()]
    return ["## Environment", "", format_markdown_table(["", "version / value"], rows), ""]


def render_markdown(result: dict[str, Any]) -> str:
    """The report in Markdown (same content and order as :func:`render_html`; figures as links relative to the
    report)."""
    size = "full sizes (--full)" if result.get("full") else "default sizes"
    lines = [
        "# robustdistill: reproduce",
        "",
        f"Command: `{result.get('command', '')}`; started {result.get('started_utc', '?')} (UTC); total "
        f"{_duration(float(result.get('seconds', 0)))}; {size}.",
        "",
        *_md_summary(result),
        *_md_problems(result),
        *_md_headlines(result),
        *_md_steps(result),
        *_md_checks(result),
        *_md_benchmarks(result),
        *_md_figures(result),
        *_md_environment(result),
    ]
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

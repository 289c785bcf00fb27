"""The ``robustdistill`` command line: help, verify, bench game, exit codes, the installed script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from robustdistill.experiments.benchmarks import reporting
from robustdistill.experiments.cli import main
from robustdistill.experiments.pipeline import files
from robustdistill.theory import simulators
from robustdistill.theory.simulators import CheckResult


def _fake_checks(holds: bool) -> list[CheckResult]:
    return [
        CheckResult("P1", "value and minimax equality", 1e-9, 1e-15, (0.0, 1e-15), True, comparator="<="),
        CheckResult(
            "P9", "a claim that " + ("holds" if holds else "fails"), 0.0, 1.0, (0.5, 1.5), holds, comparator="in"
        ),
    ]


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "verify" in out and "bench" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("robustdistill ")


def test_verify_writes_json_matching_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--quiet", "--only", "slam", "--out", str(tmp_path)]) == 0  # the group with curve files
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "verify.json").read_text())
    assert report["all_hold"] is True and report["quick"] is True and report["seed"] == 0
    assert report["checks"], "run_checks returned no checks"
    assert {"python", "versions", "timestamp_utc"} <= set(report["environment"])
    table_rows = out.strip().splitlines()[2:]  # header and rule first
    assert len(table_rows) == len(report["checks"])
    for line, check in zip(table_rows, report["checks"]):
        assert line.split()[0] == check["name"]
        assert check["holds"] is True
        assert set(check) - {"data_file"} == {"name", "claim", "bound", "measured", "interval", "holds", "comparator"}
    with_data = [c for c in report["checks"] if "data_file" in c]
    assert {"S2-scaling", "S2-LS", "S3-convergence", "S3-spread"} <= {c["name"] for c in with_data}
    for check in with_data:  # the curves behind a claim sit beside verify.json, JSON-readable
        path = Path(check["data_file"])
        assert path == tmp_path / "data" / f"{check['name']}.json"
        assert isinstance(json.loads(path.read_text()), dict)


def test_verify_failure_exits_1_and_names_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, object]] = []

    def fake_run_checks(quick: bool = True, **kwargs: object) -> list[CheckResult]:
        calls.append({"quick": quick, **kwargs})
        return _fake_checks(holds=False)

    monkeypatch.setattr(simulators, "run_checks", fake_run_checks)
    assert main(["verify", "--quiet", "--full", "--seed", "7", "--out", str(tmp_path)]) == 1
    assert calls == [{"quick": False, "rng": 7, "progress": False, "only": None}]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "P9" in err[0] and "P1" not in err[0]
    report = json.loads((tmp_path / "verify.json").read_text())
    assert report["all_hold"] is False and report["quick"] is False and report["seed"] == 7
    assert [c["holds"] for c in report["checks"]] == [True, False]
    assert report["checks"][1]["interval"] == [0.5, 1.5]


def test_verify_only_passes_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    def fake_run_checks(quick: bool = True, **kwargs: object) -> list[CheckResult]:
        calls.append(kwargs["only"])
        return _fake_checks(holds=True)

    monkeypatch.setattr(simulators, "run_checks", fake_run_checks)
    assert main(["verify", "--quiet", "--only", "slam", "--only", "weighted", "--out", str(tmp_path)]) == 0
    assert calls == [["slam", "weighted"]]
    assert json.loads((tmp_path / "verify.json").read_text())["only"] == ["slam", "weighted"]


def test_error_in_command_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def bad_run_checks(quick: bool = True, **kwargs: object) -> list[CheckResult]:
        raise ValueError("rng must be a seed\nor a Generator")

    monkeypatch.setattr(simulators, "run_checks", bad_run_checks)
    assert main(["verify", "--quiet", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "robustdistill: error: rng must be a seed or a Generator\n"
    assert not (tmp_path / "verify.json").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["nonsense"],
        ["verify", "--seed", "-1"],
        ["verify", "--seed", "x"],
        ["bench"],
        ["bench", "game", "--bad"],
        ["bench", "nothing"],
        ["verify", "--only", "nope"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "error:" in capsys.readouterr().err


def test_bench_game_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "game", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "bench_game.json").read_text())
    assert {"rows", "targets", "targets_met", "environment", "seed", "pinned", "protocol"} <= set(result)
    assert [row["n"] for row in result["rows"]] == [10**3, 10**4]
    lp_rows = [row for row in result["rows"] if row["lp_s"] is not None]
    assert [row["n"] for row in lp_rows] == [10**3]
    for row in result["rows"]:
        assert row["b"] == row["n"] // 100 and row["m"] == row["n"] // 20 and row["batch"] == row["b"]
        assert row["certificate_gap"] <= 1e-9
        assert 0 < row["solve_s"] and 0 < row["depround_s"] and 0 < row["solve_sample_s"]
    for row in lp_rows:
        assert row["value_gap"] <= 1e-9 and row["speedup"] > 0
    assert result["targets_met"]["value_gap"] is True
    assert result["targets_met"]["certificate_gap"] is True
    assert result["targets_met"]["solve_sample_s_at_1e6"] is None  # not run in quick mode
    assert "solve_sample_s" in out and "value_gap" in out


def test_bench_losses_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "losses", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "bench_losses.json").read_text())
    assert {"environment", "seed", "targets"} <= set(result)
    assert "slam_loss[index]" in out and "slam_loss[mask]" in out and "soft_cross_entropy" in out
    assert "fit_teacher_accuracy" in out or "teacher" in out


def test_bench_halfspace_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "halfspace", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "bench_halfspace.json").read_text())
    assert {"environment", "rows", "fit", "targets", "targets_met"} <= set(result)
    assert len(result["rows"]) == 4 and all(r["learner_s"] > 0 for r in result["rows"])
    assert "us per step" in out and "max_rel_residual" in out


def test_halfspace_linear_model_fit() -> None:
    """The time model t = n (a + b d) is recovered exactly from exact timings, and a quadratic cell shows."""
    from robustdistill.experiments.benchmarks.halfspace import fit_linear_model

    rows = [{"n": n, "d": d, "learner_s": n * (2e-5 + 3e-9 * d)} for n in (100, 400) for d in (5, 500)]
    fit = fit_linear_model(rows)
    assert fit["a_us_per_step"] == pytest.approx(20.0) and fit["b_ns_per_coordinate"] == pytest.approx(3.0)
    assert fit["max_rel_residual"] < 1e-9
    rows.append({"n": 1600, "d": 500, "learner_s": 1600 * (2e-5 + 3e-9 * 500) * 4})  # super-linear cell
    assert fit_linear_model(rows)["max_rel_residual"] > 0.3


def test_bench_losses_thread_counts() -> None:
    """Several thread counts in one run: every case at each count, the setting restored afterwards."""
    from robustdistill.experiments.benchmarks import losses as bench_losses

    before = torch.get_num_threads()
    result = bench_losses.run(quick=True, threads=[1, 2], teacher_quality_n=0)
    assert torch.get_num_threads() == before
    assert result["protocol"]["threads_set"] == [1, 2]
    for count in (1, 2):
        rows = [r for r in result["rows"] if r["threads"] == count]
        assert {r["loss"] for r in rows} >= {"soft_cross_entropy", "slam_loss[index]", "weighted"}
        assert {(c["n"], c["K"]) for c in result["ratio_checks"] if c["threads"] == count} == set(
            bench_losses.QUICK_SHAPES
        )
    with pytest.raises(ValueError, match="threads"):
        bench_losses.run(quick=True, threads=[], teacher_quality_n=0)


def test_pin_restores_affinity() -> None:
    from robustdistill.experiments.benchmarks.game import pin_to_one_core

    before = sorted(os.sched_getaffinity(0)) if hasattr(shutil.os, "sched_getaffinity") else None
    with pin_to_one_core() as info:
        if info["pinned"]:
            assert sorted(os.sched_getaffinity(0)) == [info["cpu"]]
    if before is not None:
        assert sorted(os.sched_getaffinity(0)) == before


def test_reporting_helpers(tmp_path: Path) -> None:
    path = files.write_json_atomic(tmp_path / "a" / "b.json", {"x": (1.5, 2), "ok": True})
    assert json.loads(path.read_text()) == {"x": [1.5, 2], "ok": True}
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]  # no temporary file left behind
    table = reporting.format_table([{"name": "a", "v": 0.123456789}, {"name": "bb", "v": None}], ["name", "v"])
    assert table.splitlines() == ["name         v", "----  --------", "a     0.123457", "bb           -"]


def test_console_script_help() -> None:
    script = Path(sys.executable).parent / "robustdistill"
    found = str(script) if script.exists() else shutil.which("robustdistill")
    if found is None:
        pytest.skip("the robustdistill console script is not installed")
    proc = subprocess.run([found, "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "verify" in proc.stdout and "bench" in proc.stdout


@pytest.mark.parametrize("command", ["distill", "active"])
def test_a_bad_config_file_fails_before_the_training_stack_is_imported(tmp_path: Path, command: str) -> None:
    """A missing file, a TOML syntax error (named with its file) or an unknown key fail with exit 2 before torch
    is imported (so in well under a second, not the several seconds of the training stack's imports)."""
    bad = tmp_path / "broken.toml"
    bad.write_text('dataset = "digits"\nlabeled = [\n')
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('dataset = "digits"\nepoch = 3\n')
    code = (
        "import sys, contextlib, io\n"
        "from robustdistill.experiments.cli import main\n"
        "err = io.StringIO()\n"
        "with contextlib.redirect_stderr(err):\n"
        f"    codes = [main([{command!r}, p]) for p in {[str(bad), str(tmp_path / 'missing.toml'), str(unknown)]!r}]\n"
        "print(codes, 'torch' in sys.modules)\n"
        "print(err.getvalue())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, *messages = done.stdout.splitlines()
    assert first == "[2, 2, 2] False"
    text = "\n".join(messages)
    assert f"config file '{bad}' is not valid TOML" in text and "missing.toml' not found" in text
    assert "unknown config key(s) 'epoch'" in text


def test_a_benchmark_with_a_results_page_writes_it_beside_its_json(tmp_path, monkeypatch):
    """``run_bench`` writes ``bench_NAME.md`` from the result when the benchmark has a ``page`` (the
    Fashion-MNIST benchmark does), and only then."""
    import types

    from robustdistill.experiments.benchmarks import BENCHMARKS, Benchmark
    from robustdistill.experiments.cli.jobs import run_bench

    module = types.SimpleNamespace(
        run=lambda seed, quick, progress: {"value": 1}, table=lambda r: "t", page=lambda r: f"# page {r['value']}\n"
    )
    fake = Benchmark("fake", "a fake benchmark", 1.0)
    monkeypatch.setattr(Benchmark, "load", lambda self: module)
    monkeypatch.setitem(BENCHMARKS, "fake", fake)
    run_bench("fake", tmp_path)
    assert (tmp_path / "bench_fake.md").read_text() == "# page 1\n"
    del module.page
    run_bench("fake", tmp_path / "b")
    assert (tmp_path / "b" / "bench_fake.json").exists() and not (tmp_path / "b" / "bench_fake.md").exists()

"""A run's folder ``OUT/NAME``: owned by one configuration, used by one process at a time.

- **Ownership.** A run records its configuration's key in ``OUT/NAME/run.json`` (with a content digest).
  A run of another configuration under the same ``out`` and ``name`` would overwrite that configuration's
  per-seed files and its ``OUT/NAME.json``: it is refused with a ``ValueError`` naming the folder, unless
  its config says ``overwrite = true``, which deletes the other configuration's results first. A folder
  whose ``run.json`` is missing or damaged is judged by its per-seed records instead.
- **Lock.** While a run uses the folder it holds an exclusive lock on ``OUT/NAME/.lock`` (``flock``; the
  operating system releases it when the process ends, even when it is killed), so a second run of the same
  folder at the same time stops with :class:`RunInUseError` instead of training the same seeds again.
- **Leftovers.** Temporary files that killed writers left in the folder are removed when it is claimed.
- **Data-parallel runs** (``torchrun``): rank 0 alone locks, checks and writes the folder; its outcome (the
  folder, or the error that refused it) is shared with every rank, so all ranks go on or all stop. When the
  run ends, the ranks meet at a barrier before rank 0 releases the lock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from robustdistill.experiments.distributed.collectives import barrier, is_main

from .files import read_json, remove_stale_temporaries, write_json_atomic
from .parallel import main_only

__all__ = ["MANIFEST_NAME", "RunInUseError", "check_name", "claim_run", "run_folder"]

#: The file that says which configuration owns a run folder.
MANIFEST_NAME = "run.json"
_LOCK_NAME = ".lock"


class RunInUseError(BlockingIOError):
    """Another process is running the same folder now (an ``OSError``: the command line reports it in one line)."""


def check_name(value: object, key: str = "name") -> str:
    """``value`` when it is a plain file name (no folder separators, not ``.`` or ``..``, no control
    characters), else ``ValueError``: a run's files stay inside its ``out`` folder."""
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {type(value).__name__} {value!r}")
    if (
        not value
        or value in (".", "..")
        or "/" in value
        or "\\" in value
        or os.sep in value
        or any(ord(c) < 32 for c in value)
        or Path(value).is_absolute()
    ):
        raise ValueError(f"{key} must be a plain name (no folders, not '.' or '..'), got {value!r}")
    return value


def run_folder(cfg: Mapping[str, Any]) -> Path:
    """``OUT/NAME``: the run's per-seed files."""
    return Path(cfg["out"]) / check_name(cfg["name"])


def _lock(folder: Path) -> TextIO:
    """The open lock file of ``folder``, locked exclusively; :class:`RunInUseError` when another holds it."""
    fh = open(folder / _LOCK_NAME, "a+")  # noqa: SIM115 - held open for the run, closed by claim_run
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            import msvcrt

            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise RunInUseError(
            f"{folder} is in use by a run now ({holder}); wait for it to finish, or choose another name or out"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()}\n")
    fh.flush()
    return fh


def _owner(folder: Path) -> str | None:
    """The key of the configuration whose results the folder holds, or None when it holds none."""
    manifest = read_json(folder / MANIFEST_NAME)
    if manifest is not None and isinstance(manifest.get("config_key"), str):
        return manifest["config_key"]
    for path in sorted(folder.glob("seed_*.json")):  # a folder without a readable manifest
        record = read_json(path)
        if record is not None and isinstance(record.get("config_key"), str):
            return record["config_key"]
    return None


def _clear(folder: Path, summary: Path) -> None:
    """Delete a run's results: its per-seed files, checkpoints, manifest and summary (not the lock)."""
    for path in folder.iterdir():
        if path.name == _LOCK_NAME:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    summary.unlink(missing_ok=True)


def _claim(cfg: Mapping[str, Any], config_key: str, pipeline: str) -> TextIO:
    """Lock, check and record the run folder of ``cfg``; returns the open lock file (:func:`claim_run`)."""
    folder = run_folder(cfg)
    summary = Path(cfg["out"]) / f"{cfg['name']}.json"
    folder.mkdir(parents=True, exist_ok=True)
    fh = _lock(folder)
    try:
        remove_stale_temporaries(folder)
        owner = _owner(folder)
        if owner is not None and owner != config_key:
            if not cfg.get("overwrite", False):
                raise ValueError(
                    f"{folder} holds the results of another configuration (key {owner[:12]}, this one is "
                    f"{config_key[:12]}); give this run another name, or set overwrite = true to replace them"
                )
            _clear(folder, summary)
        if owner != config_key:
            write_json_atomic(
                folder / MANIFEST_NAME,
                {"config_key": config_key, "pipeline": pipeline, "name": cfg["name"]},
                digest=True,
            )
    except BaseException:
        fh.close()
        raise
    return fh


@contextlib.contextmanager
def claim_run(cfg: Mapping[str, Any], config_key: str, pipeline: str) -> Iterator[Path]:
    """Lock the run folder of ``cfg`` for this process, check that it holds this configuration's results (or
    none; ``cfg["overwrite"]`` deletes another's), record the owner, and yield the folder. Data-parallel, rank 0
    does all of it and every rank yields the folder or raises rank 0's error (module docstring).

    Raises:
        RunInUseError: another process holds the folder.
        ValueError: the folder holds another configuration's results and ``overwrite`` is false.
    """
    fh = main_only(lambda: _claim(cfg, config_key, pipeline))
    try:
        yield run_folder(cfg)
        barrier()  # every rank is done with the folder before rank 0 releases it
    finally:
        if fh is not None and is_main():
            fh.close()

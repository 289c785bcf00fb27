"""Files of results: atomic writes (temporary file, then rename), JSON, and the environment stamp of a result."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

from robustdistill.algorithms.results import to_jsonable

__all__ = ["environment_info", "write_atomic", "write_json_atomic"]

_PACKAGES = ("numpy", "scipy", "cvxpy", "highspy", "torch", "robustdistill")


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Files are created with the mode ``open()`` would give them (``mkstemp`` alone makes them 0600).
_FILE_MODE = 0o666 & ~_read_umask()


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Write a file atomically and return its path: parent folders are created, ``write(fh)`` fills a
    temporary binary file in the same folder, which is flushed and fsync'ed, then ``os.replace``'d over
    ``path``: a reader sees the old file or the new one, never a part (the temporary file is removed on
    failure). The file gets the usual mode (0666 less the umask), not ``mkstemp``'s 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.chmod(tmp, _FILE_MODE)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as JSON (UTF-8) to ``path`` atomically (:func:`write_atomic`) and return the path.
    numpy scalars and arrays are converted with :func:`~robustdistill.algorithms.results.to_jsonable`."""
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=True) + "\n"
    return write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment_info() -> dict[str, Any]:
    """What produced a result: Python, platform, package versions (None if absent), CPUs, UTC time."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "versions": {name: _version(name) for name in _PACKAGES},
        "cpu_count": os.cpu_count(),
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }

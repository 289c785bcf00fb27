"""Files the pipeline writes: atomic writes (temporary file, then rename), content digests checked on load,
JSON, and the environment stamp of a result.

**Digests.** Every cache entry, checkpoint, state file and per-seed record carries ``sha256``, the SHA-256 of
its contents (:func:`content_digest`), and is checked when read back: an entry that is truncated, has a
flipped bit, was edited by hand or was written by an older version fails the check, is reported with a
:class:`DamagedFileWarning` naming the file, and is recomputed; it is never used. Torch files stay ordinary
``torch.save`` dicts (one more key) and JSON files ordinary JSON.

**Temporary files.** :func:`write_atomic` names its temporary file after the writing process
(``.NAME.PID.*.tmp``), so that one left behind by a killed process is recognised and removed by
:func:`remove_stale_temporaries`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import platform
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from robustdistill.algorithms.results import to_jsonable

__all__ = [
    "DIGEST_KEY",
    "DamagedFileWarning",
    "content_digest",
    "environment_info",
    "load_npz",
    "load_torch",
    "read_json",
    "remove_stale_temporaries",
    "save_npz",
    "save_torch",
    "write_atomic",
    "write_json_atomic",
]

#: The key under which a file's content digest is stored.
DIGEST_KEY = "sha256"


class DamagedFileWarning(UserWarning):
    """A file the pipeline wrote failed its content check (damaged, edited or from an older version); what it
    held is recomputed."""


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
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


_TEMPORARY = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or cannot tell: keep its file
    return True


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files that :func:`write_atomic` left in ``folder`` (and below) when its process
    was killed, i.e. those whose writing process no longer runs; returns the paths removed."""
    removed = []
    for path in Path(folder).rglob(".*.tmp"):
        match = _TEMPORARY.match(path.name)
        if match and path.is_file() and not _running(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _update(h: Any, obj: Any) -> None:
    """Feed ``obj`` to the hash ``h`` in a form that tells apart types, lengths and nesting."""
    import torch

    if obj is None:
        h.update(b"N")
    elif isinstance(obj, (bool, np.bool_)):
        h.update(b"B1" if obj else b"B0")
    elif isinstance(obj, (int, np.integer)):
        h.update(b"I%d;" % int(obj))
    elif isinstance(obj, (float, np.floating)):
        h.update(b"F" + float(obj).hex().encode() + b";")
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        h.update(b"S%d;" % len(data) + data)
    elif isinstance(obj, bytes):
        h.update(b"Y%d;" % len(obj) + obj)
    elif isinstance(obj, (list, tuple)):
        h.update(b"L%d;" % len(obj))
        for item in obj:
            _update(h, item)
    elif isinstance(obj, Mapping):
        items = sorted(obj.items(), key=lambda kv: (type(kv[0]).__name__, repr(kv[0])))
        h.update(b"D%d;" % len(items))
        for key, value in items:
            _update(h, key)
            _update(h, value)
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, np.ndarray) and obj.dtype != object:
        a = np.ascontiguousarray(obj)
        h.update(f"A{a.dtype.str}{a.shape};".encode())
        h.update(memoryview(a.reshape(-1)).cast("B") if a.size else b"")
    else:
        raise TypeError(f"content_digest: cannot digest a {type(obj).__name__}")


def content_digest(obj: Any) -> str:
    """SHA-256 (hex) of a nest of dicts, lists, tuples, strings, numbers, None, numpy arrays and torch tensors
    (dtype, shape and bytes): equal for equal contents, whatever the dict order; any changed bit changes it."""
    h = hashlib.sha256()
    _update(h, obj)
    return h.hexdigest()


def _json_normal(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists, keys strings), so a digest survives the trip."""
    return json.loads(json.dumps(to_jsonable(obj), allow_nan=True))


def _damaged(path: Path, reason: str) -> None:
    warnings.warn(f"{path}: {reason}; it is recomputed", DamagedFileWarning, stacklevel=3)


def _read_bytes(path: Path) -> bytes | None:
    """The file's bytes; None when it is absent, or unreadable (with a :class:`DamagedFileWarning`)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        _damaged(path, f"unreadable ({exc})")
        return None


def _checked(obj: Any, path: Path) -> dict[str, Any] | None:
    """``obj`` without its digest when it is a dict whose digest matches; else None (and a warning)."""
    if not isinstance(obj, dict) or not isinstance(obj.get(DIGEST_KEY), str):
        _damaged(path, "no content digest (damaged, or written by an older version)")
        return None
    body = {k: v for k, v in obj.items() if k != DIGEST_KEY}
    if content_digest(body) != obj[DIGEST_KEY]:
        _damaged(path, "the content does not match its digest (damaged or edited)")
        return None
    return body


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, digest: bool = False) -> Path:
    """Write ``obj`` as JSON (UTF-8) to ``path`` atomically (:func:`write_atomic`) and return the path.
    numpy scalars and arrays are converted with :func:`~robustdistill.algorithms.results.to_jsonable`.
    ``digest=True`` (``obj`` a dict) adds ``sha256``, the :func:`content_digest` of what the rest reads back
    as, for :func:`read_json` to check."""
    obj = to_jsonable(obj)
    if digest:
        if not isinstance(obj, dict):
            raise TypeError(f"write_json_atomic(digest=True) needs a dict, got {type(obj).__name__}")
        body = _json_normal({k: v for k, v in obj.items() if k != DIGEST_KEY})
        obj = {**body, DIGEST_KEY: content_digest(body)}
    text = json.dumps(obj, indent=2, allow_nan=True) + "\n"
    return write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def read_json(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The dict that :func:`write_json_atomic` wrote with ``digest=True``, without its digest; None when the
    file is absent, and None with a :class:`DamagedFileWarning` when it is not that (truncated, not a dict,
    no digest, or edited: its contents no longer match the digest)."""
    path = Path(path)
    data = _read_bytes(path)
    if data is None:
        return None
    try:
        obj = json.loads(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError included
        _damaged(path, f"not JSON ({exc})")
        return None
    return _checked(obj, path)


def save_torch(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """``torch.save`` the dict ``payload`` (tensors moved to the CPU) with its ``sha256`` added, atomically;
    read it back with :func:`load_torch`."""
    import torch

    body = {k: _to_cpu(v) for k, v in payload.items() if k != DIGEST_KEY}
    data = {**body, DIGEST_KEY: content_digest(body)}
    return write_atomic(path, lambda fh: torch.save(data, fh))


def _to_cpu(obj: Any) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def load_torch(path: str | os.PathLike[str], *, expected: str | None = None) -> dict[str, Any] | None:
    """The dict :func:`save_torch` wrote at ``path`` (tensors on the CPU, read with ``weights_only=True``),
    without its digest; None when the file is absent, and None with a :class:`DamagedFileWarning` when it
    cannot be read or fails its content check. ``expected``: the digest of a plain ``torch.save`` dict, kept
    elsewhere (a seed's record keeps its student's), to check instead of one inside the file."""
    import torch

    path = Path(path)
    data = _read_bytes(path)
    if data is None:
        return None
    try:
        with warnings.catch_warnings():  # torch's remarks on a garbage file: it is reported as damaged instead
            warnings.simplefilter("ignore")
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to parse is a damaged file, recomputed
        _damaged(path, f"not a readable torch file ({type(exc).__name__})")
        return None
    if expected is None:
        return _checked(obj, path)
    if not isinstance(obj, dict) or content_digest(obj) != expected:
        _damaged(path, "the content does not match the digest kept for it (damaged or replaced)")
        return None
    return obj


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


def save_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> Path:
    """``np.savez`` the arrays with their ``sha256`` (a 0-d string array) added, atomically; read them back
    with :func:`load_npz`."""
    body = {k: np.asarray(v) for k, v in arrays.items()}
    data = {**body, DIGEST_KEY: np.array(content_digest(body))}
    return write_atomic(path, lambda fh: np.savez(fh, **data))


def load_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray] | None:
    """The arrays :func:`save_npz` wrote at ``path`` (read with ``allow_pickle=False``), without the digest;
    None when absent, and None with a :class:`DamagedFileWarning` when unreadable or failing its check."""
    path = Path(path)
    data = _read_bytes(path)
    if data is None:
        return None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            obj = {k: np.asarray(npz[k]) for k in npz.files}
    except Exception as exc:  # noqa: BLE001 - any failure to parse is a damaged file, recomputed
        _damaged(path, f"not a readable npz file ({type(exc).__name__})")
        return None
    digest = obj.get(DIGEST_KEY)
    if digest is not None:
        obj[DIGEST_KEY] = str(digest) if digest.ndim == 0 and digest.dtype.kind == "U" else None
    return _checked(obj, path)

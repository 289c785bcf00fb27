"""Run configs: reading a TOML file or a dict, the keys each pipeline knows, and ``"package.module:attr"`` names.

Light on purpose (no torch): the command line checks a config file with :func:`read_config` and
:func:`check_keys` before it imports the training stack, so a missing or malformed file fails at once. The
values are checked by ``load_config`` (:mod:`~robustdistill.experiments.pipeline.distill`) and
``load_active_config`` (:mod:`~robustdistill.experiments.pipeline.active`).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["ACTIVE_KEYS", "CONFIG_KEYS", "check_keys", "import_object", "is_import_name", "read_config", "tomllib"]

#: Keys of ``run_distillation``'s config and their defaults (None: required, or derived).
CONFIG_KEYS: dict[str, Any] = {
    "name": None,
    "dataset": None,
    "labeled": None,
    "validation": None,
    "unlabeled": None,
    "test": None,
    "stratify": False,
    "teacher": None,
    "student": None,
    "epochs": None,
    "teacher_epochs": None,
    "train": {},
    "teacher_train": {},
    "method": None,
    "method_options": {},
    "seeds": 3,
    "device": "auto",
    "out": "reports/distill",
    "cache": "reports/cache",
    "checkpoints": False,
    "resume": True,
    "evaluate_teacher": True,
    "overwrite": False,
}
#: Keys the active loop adds to ``CONFIG_KEYS`` (it takes ``loss`` / ``loss_options`` instead of ``method`` /
#: ``method_options``), with their defaults.
ACTIVE_KEYS: dict[str, Any] = {
    "selector": None,
    "gain": "margin",
    "rounds": None,
    "budget": None,
    "loss": "vanilla",
    "loss_options": {},
    "retrain": "scratch",
    "pool_diagnostics": False,
    "mistakes": "pool",
}


def read_config(config: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """A config dict (copied), or a TOML file read into one (its stem is the default ``name``). A missing file
    or a TOML syntax error raises ``ValueError`` naming the file (and the line, for a syntax error)."""
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if not path.is_file():
            raise ValueError(f"config file {str(path)!r} not found")
        try:
            with path.open("rb") as fh:
                raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"config file {str(path)!r} is not UTF-8 text: {exc}") from None
        raw.setdefault("name", path.stem)
        return raw
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"config must be a dict or a TOML file path, got {type(config).__name__}")


def check_keys(raw: Mapping[str, Any], *, active: bool = False) -> None:
    """Unknown keys raise ``ValueError`` listing the known ones (the active loop's adds :data:`ACTIVE_KEYS` and
    refuses ``method`` / ``method_options``)."""
    known = {**CONFIG_KEYS, **ACTIVE_KEYS} if active else CONFIG_KEYS
    if active and ("method" in raw or "method_options" in raw):
        raise ValueError("the active loop takes loss / loss_options, not method / method_options")
    unknown = sorted(set(raw) - set(known) - ({"method", "method_options"} if active else set()))
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}")


def is_import_name(value: object) -> bool:
    """Whether ``value`` is a ``"package.module:attr"`` name (a registry name never holds a colon)."""
    return isinstance(value, str) and value.count(":") == 1 and all(value.split(":"))


def import_object(name: str) -> Any:
    """The object a ``"package.module:attr"`` name points at (``attr`` may be dotted), with a ``ValueError``
    naming what could not be found."""
    if not is_import_name(name):
        raise ValueError(f"{name!r} is not a 'package.module:attr' name")
    module_name, attr = name.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{name!r}: cannot import module {module_name!r} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{name!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj

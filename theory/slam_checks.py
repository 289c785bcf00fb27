"""Simulators of slam (placeholder registry: filled in by the slam simulator work)."""

from __future__ import annotations

from .checks import Check

CHECKS: list[Check] = []

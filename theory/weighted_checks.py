"""Simulators of weighted (placeholder registry: filled in by the weighted simulator work)."""

from __future__ import annotations

from .checks import Check

CHECKS: list[Check] = []

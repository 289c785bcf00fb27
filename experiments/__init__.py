"""Experiments layer: the command-line interface, benchmarks and (later) datasets, models and training."""

"""Figure scripts, one per figure, run as ``python -m paper_figures.NAME`` (none yet: see the README's Status)."""

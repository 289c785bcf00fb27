"""Sphinx configuration of the documentation site: ``make docs`` builds it offline into ``docs/_build/html``.

Sphinx because the docstrings are reStructuredText with math (``:math:`` and ``.. math::``) in Google style
(``Args:``), which autodoc and napoleon render as written; the theory and results pages are MyST Markdown;
MathJax is served from the build itself (sphinx-mathjax-offline), so the site needs no network.
"""

from __future__ import annotations

from importlib import metadata

project = "robustdistill"
author = "robustdistill maintainers"
release = metadata.version("robustdistill")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**/*.json"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = "robustdistill"
html_static_path: list[str] = []
napoleon_use_ivar = True  # a class's "Attributes:" as fields, not a second description of each attribute

"""Sphinx configuration of the documentation site: ``make docs`` builds it offline into ``docs/_build/html``.

Sphinx because the docstrings are reStructuredText with math (``:math:`` and ``.. math::``) in Google style
(``Args:``), which autodoc and napoleon render as written; the theory and results pages are MyST Markdown;
MathJax is served from the build itself (sphinx-mathjax-offline), so the site needs no network.
"""

from __future__ import annotations

import re
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


def _escape_fitted_attributes(app, what, name, obj, options, lines):  # noqa: ANN001, ARG001 - Sphinx's signature
    """Fitted attributes end with ``_`` (scikit-learn's convention); where a line starts with one (``name_:``,
    or napoleon's ``:ivar name_:``), the trailing underscore would be read as a link: escape it (after
    napoleon, priority 600)."""
    for i, line in enumerate(lines):
        lines[i] = re.sub(r"^(\s*(?::ivar )?\w*?)_:", r"\1\\_:", line)


def setup(app):  # noqa: ANN001, ANN201
    app.connect("autodoc-process-docstring", _escape_fitted_attributes, priority=600)

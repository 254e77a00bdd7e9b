"""Sphinx configuration of ragged's API reference (``make docs``).

The front page is the README (rewritten on the fly so that its links to
``benchmarks/RESULTS.md`` and ``docs/*.png`` resolve inside the site); the
API page documents every name in ``ragged.__all__`` from its docstring.  The
build runs nitpicky with warnings as errors, so a reference to a ragged name
that does not exist fails it.  Python's own names cannot be resolved without
an inventory of docs.python.org (which the build does not fetch), so they are
listed in ``nitpick_ignore_regex``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import ragged

ROOT = Path(__file__).resolve().parent.parent

project = "ragged"
author = "the ragged authors"
copyright = "the ragged authors"
release = version = ragged.__version__

extensions = ["sphinx.ext.autodoc", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = f"ragged {release}"
html_theme_options = {"page_width": "1160px", "sidebar_width": "230px"}

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
add_module_names = False
myst_heading_anchors = 3

nitpicky = True
# Python's standard names (no inventory of them is fetched) and typing's type variables.
nitpick_ignore_regex = [
    (r"py:(class|obj|exc|data|func)", r"(builtins\.)?(int|float|str|bool|bytes|dict|list|tuple|set|object|type|None)"),
    (r"py:(class|obj|exc|data)", r"(builtins\.)?[A-Z][A-Za-z]*(Error|Exception|Group|Iteration|Interrupt|Exit)"),
    (r"py:(class|obj|data)", r"(collections\.abc|typing|types|concurrent\.futures|contextvars|threading)\..*"),
    (r"py:(class|obj|data)", r"(logging|socket|ssl)\..*|SSLContext|SSLSocket"),
    (r"py:(class|obj|data)", r"(Any|Callable|Coroutine|Awaitable|Generator|Iterator|AsyncIterator|Iterable|Mapping)"),
    (r"py:(class|obj|data)", r"(Future|Context|LogRecord|Filter|FrameType|TracebackType|Self|ParamSpec)"),
    (r"py:(class|obj|data)", r"(ragged\.)?(_[A-Za-z]+\.)*([TRKV]|[TRKV]_co|Ts)|P\.(args|kwargs)"),
    (r"py:(class|obj|data)", r"os\.PathLike|str \| os\.PathLike.*|PathLike"),
]


def _front_page(app: Any, docname: str, source: list[str]) -> None:
    """index: the README, its repository-relative links made site-relative."""
    if docname != "index":
        return
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    text = text.replace("](benchmarks/RESULTS.md)", "](results.md)")
    text = re.sub(r"\]\(docs/", "](", text)
    toc = (
        "\n\n```{toctree}\n:maxdepth: 1\n:caption: Guides\n:glob:\n\nguides/*\n```\n"
        "\n```{toctree}\n:maxdepth: 2\n:caption: Reference\n\napi\ndesign\nresults\n```\n"
    )
    source[0] = text + toc


def setup(app: Any) -> None:
    app.connect("source-read", _front_page)

"""Which interpreter a benchmark measured: version, build (free-threaded or default) and GIL state.

Every benchmark result carries :func:`info` in its JSON and :func:`label` in
its text header and plot title, so a figure can never be read without the
build it came from.  The GIL state is read when the result is put together
(after every import of the run), since importing an extension that does not
declare free-threading support turns the GIL back on in a free-threaded
interpreter unless ``PYTHON_GIL=0`` is set.
"""

from __future__ import annotations

import platform
from typing import Any

from .._core._platform import FREE_THREADED_BUILD, gil_enabled


def info() -> dict[str, Any]:
    """``{"python": "3.13.5", "build": "free-threaded" | "default", "gil": bool}`` for this process."""
    return {
        "python": platform.python_version(),
        "build": "free-threaded" if FREE_THREADED_BUILD else "default",
        "gil": gil_enabled(),
    }


def label(data: dict[str, Any]) -> str:
    """One line naming the build a result measured, e.g. ``Python 3.13.5 free-threaded build, GIL off``.

    ``data`` is a result dict holding the keys of :func:`info`; results of an
    older version of the bench that lack ``build``/``gil`` say "build not recorded".
    """
    py = f"Python {data.get('python', '?')}"
    build, gil = data.get("build"), data.get("gil")
    if build is None or gil is None:
        return f"{py} (build not recorded)"
    text = f"{py} {build} build, GIL {'on' if gil else 'off'}"
    if build == "free-threaded" and gil:
        text += " (turned back on: run with PYTHON_GIL=0)"
    return text

"""What the interpreter is: a GIL build, or a free-threaded one (PEP 703) with the GIL off or on.

ragged decides behaviour by what the interpreter *is*, never by a user flag
(docs/design.md).  A free-threaded build (3.13t, 3.14t) runs every M's Python at the
same time -- unless the GIL got turned back on at run time: CPython does that
when it imports a C extension that does not declare itself free-threading safe
(cffi's ``_cffi_backend``, which ``atomics`` needs, is one), unless
``PYTHON_GIL=0`` or ``-X gil=0`` keeps it off.  Then Ps do not run in parallel
and importing ragged says so once (:func:`warn_if_gil_reenabled`).
"""

from __future__ import annotations

import os
import platform
import sys
import sysconfig
import warnings
from typing import Any

FREE_THREADED_BUILD: bool = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


class GILEnabledWarning(RuntimeWarning):
    """The GIL is on in a free-threaded build: ragged's Ps will not run in parallel."""


def gil_enabled() -> bool:
    """True while the GIL is on: always on a GIL build; at run time on a free-threaded one."""
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return True if is_enabled is None else bool(is_enabled())


def usable_cpus() -> int:
    """How many CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def describe() -> str:
    """One line naming the interpreter, its build and the GIL's state now (for headers and reports)."""
    impl = f"{platform.python_implementation()} {platform.python_version()}"
    if not FREE_THREADED_BUILD:
        return f"{impl} (GIL build)"
    return f"{impl} free-threaded build, GIL {'enabled' if gil_enabled() else 'disabled'}"


GIL_REENABLED_MESSAGE = (
    "ragged: the GIL is enabled on this free-threaded Python (a C extension that is not marked "
    "free-threading safe, such as cffi's, turned it back on), so Ps will not run in parallel; "
    "run with PYTHON_GIL=0 or python -X gil=0 to keep it off"
)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../ragged


def warn_if_gil_reenabled(free_threaded: bool | None = None, enabled: bool | None = None) -> bool:
    """Warn (a :class:`GILEnabledWarning`, one line) if the GIL is on in a free-threaded build.

    ragged calls it when it is imported, after ``atomics`` (and so cffi) is;
    the warning points at the user's ``import`` line.  A C extension that does
    not declare itself free-threading safe turns the GIL back on when it is
    imported, so call it again after importing such extensions to learn
    whether the Ps still run in parallel.  ``free_threaded`` and ``enabled``
    override what the interpreter says (for tests).  Returns True if it warned.

    :raises: nothing (the warnings filter decides whether the warning is shown).
    :Called from: anywhere.
    """
    ft = FREE_THREADED_BUILD if free_threaded is None else free_threaded
    on = gil_enabled() if enabled is None else enabled
    if not (ft and on):
        return False
    # Point at the first frame outside the ragged package: the user's import (or call).
    kw: dict[str, Any] = {"skip_file_prefixes": (_PACKAGE_DIR,)} if sys.version_info >= (3, 12) else {"stacklevel": 2}
    warnings.warn(GIL_REENABLED_MESSAGE, GILEnabledWarning, **kw)
    return True

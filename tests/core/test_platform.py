"""What the interpreter is: the build, the GIL's state, and the import warning.

On a free-threaded build where the GIL got turned back on (cffi's extension
does that unless PYTHON_GIL=0), importing ragged warns once, in one line, that
Ps will not run in parallel and how to keep the GIL off.  Nowhere else does it
warn.  The subprocess tests run on both builds: on a GIL build no warning is
the expected outcome.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

import ragged
from ragged._core import _platform


def test_warning_names_the_consequence_and_the_cure() -> None:
    """The warning is one line, says Ps will not run in parallel, and how to keep the GIL off."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _platform.warn_if_gil_reenabled(free_threaded=True, enabled=True)
    assert len(caught) == 1
    w = caught[0]
    assert issubclass(w.category, ragged.GILEnabledWarning) and issubclass(w.category, RuntimeWarning)
    msg = str(w.message)
    assert "\n" not in msg
    assert "not run in parallel" in msg and "PYTHON_GIL=0" in msg and "-X gil=0" in msg


@pytest.mark.parametrize(("ft", "on"), [(True, False), (False, True), (False, False)])
def test_no_warning_unless_free_threaded_with_the_gil_on(ft: bool, on: bool) -> None:
    """A GIL build, or a free-threaded one with the GIL off, is as it should be: no warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not _platform.warn_if_gil_reenabled(free_threaded=ft, enabled=on)
    assert caught == []


def test_describe_names_build_and_gil_state() -> None:
    """``describe()`` (the pytest header, the sieve stress) says which build and GIL state this is."""
    text = _platform.describe()
    assert sys.version.split()[0] in text
    if _platform.FREE_THREADED_BUILD:
        assert "free-threaded" in text and ("GIL disabled" if not _platform.gil_enabled() else "GIL enabled") in text
    else:
        assert "GIL build" in text and _platform.gil_enabled()


def _import_ragged(gil: str | None) -> str:
    """stderr of a fresh interpreter (this one) that imports ragged with PYTHON_GIL=``gil``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    if gil is not None:
        env["PYTHON_GIL"] = gil
    code = "import ragged, sys; sys.stderr.write('gil=%s\\n' % ragged._core._platform.gil_enabled())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("gil", [None, "1"], ids=["PYTHON_GIL-unset", "PYTHON_GIL=1"])
def test_import_warns_once_iff_the_gil_is_on_in_a_free_threaded_build(gil: str | None) -> None:
    """Without PYTHON_GIL=0 a free-threaded build ends up with the GIL on (cffi turns it back on,
    or PYTHON_GIL=1 keeps it): importing ragged warns exactly once, in one line.  A GIL build never
    warns."""
    err = _import_ragged(gil)
    lines = [ln for ln in err.splitlines() if "GILEnabledWarning" in ln]
    if _platform.FREE_THREADED_BUILD:
        assert "gil=True" in err, err
        assert len(lines) == 1, err
        assert "<string>:1: GILEnabledWarning: ragged: " in lines[0], "the warning should point at the import"
    else:
        assert lines == [], err


@pytest.mark.timeout(120)
def test_import_does_not_warn_with_the_gil_kept_off() -> None:
    """PYTHON_GIL=0: the GIL stays off on a free-threaded build, and nothing is said.

    A GIL build before 3.13 ignores PYTHON_GIL; from 3.13 on a GIL build
    refuses PYTHON_GIL=0 at startup, so no such process can import ragged.
    """
    if not _platform.FREE_THREADED_BUILD and sys.version_info >= (3, 13):
        env = dict(os.environ, PYTHON_GIL="0")
        out = subprocess.run([sys.executable, "-c", "pass"], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "not supported by this build" in out.stderr, out.stderr
        return
    err = _import_ragged("0")
    assert "GILEnabledWarning" not in err, err
    assert ("gil=False" if _platform.FREE_THREADED_BUILD else "gil=True") in err, err

"""ragged's types reach its users: mypy checks ``tests/tools/typing_usage.py``, a user's code.

The usage file asserts exact types (``assert_type``) for ``await g``,
``g.result()``, ``await ch.recv()``, ``rt.submit(...)`` and the rest, and marks
misuses with targeted ignores that must stay needed; see its docstring.  It
is also run, so that what it claims holds at run time.  ``mypy ragged``
itself is clean in ``make lint`` and CI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
USAGE = ROOT / "tests" / "tools" / "typing_usage.py"


@pytest.mark.timeout(600)
def test_user_code_gets_precise_types() -> None:
    """mypy accepts every exact type the usage file asserts and flags every misuse it marks."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--warn-unused-ignores", "--no-incremental", str(USAGE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=570,
    )
    assert proc.returncode == 0, f"mypy on {USAGE.name}:\n{proc.stdout}{proc.stderr}"


@pytest.mark.timeout(60)
def test_usage_file_runs() -> None:
    """The typed usage is real code: it runs and returns what it computed."""
    sys.path.insert(0, str(USAGE.parent))
    try:
        import typing_usage
    finally:
        sys.path.remove(str(USAGE.parent))
    assert typing_usage.main_thread() == 9

"""The wheel a user installs: ``py.typed`` shipped, ``ragged-bench`` installed, types visible.

Builds the wheel of this checkout as a user would (``pip wheel --no-deps .``,
pip fetching the build backend), installs it into a fresh venv (pip fetches
its dependencies from the package index), and checks
there -- outside the checkout, so nothing is imported from it -- that
``ragged/py.typed`` is installed, that the ``ragged-bench`` console script
runs, and that mypy, pointed at that venv, reads ragged's types through the
marker (without it mypy reports the package as untyped).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINT = "ragged-bench = ragged.bench.__main__:main"

USER_CODE = """\
from typing import assert_type

import ragged


async def square(x: int) -> int:
    return x * x


async def main() -> int:
    g = ragged.go(square, 3)
    assert_type(g, ragged.Goroutine[int])
    return await g


assert_type(ragged.run(main), int)
"""


def run(cmd: list[str], cwd: Path, timeout: float) -> str:
    """Run ``cmd``; return its output, or fail the test with it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def build_wheel(out: Path) -> Path:
    """The wheel of this checkout, built into ``out``."""
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)], out.parent, 300)
    (wheel,) = out.glob("ragged-*.whl")
    return wheel


@pytest.mark.timeout(900)
def test_wheel_in_a_fresh_venv_has_the_marker_the_entry_point_and_types(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "ragged/py.typed" in names, f"py.typed is not in {wheel.name}"
        (eps,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert ENTRY_POINT in z.read(eps).decode()

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, 300)
    py = venv / "bin" / "python"
    extra = [] if getattr(sys, "_is_gil_enabled", lambda: True)() else ["cffi<2"]  # see COMMON: FT needs cffi<2
    run([str(py), "-m", "pip", "install", "-q", str(wheel), *extra], tmp_path, 600)

    out = run(
        [
            str(py),
            "-c",
            "import importlib.resources, ragged; print(ragged.__file__); "
            "print(importlib.resources.files('ragged').joinpath('py.typed').is_file())",
        ],
        tmp_path,
        60,
    ).split()
    assert Path(out[0]).is_relative_to(venv), f"ragged was imported from {out[0]}, not the venv"
    assert out[1] == "True", "ragged/py.typed is not installed"

    bench = venv / "bin" / "ragged-bench"
    assert bench.is_file(), "the ragged-bench console script is not installed"
    assert "usage:" in run([str(bench), "--help"], tmp_path, 60)

    user = tmp_path / "user"
    user.mkdir()
    (user / "app.py").write_text(USER_CODE)
    run(
        [sys.executable, "-m", "mypy", "--python-executable", str(py), "--no-incremental", "app.py"],
        user,
        600,
    )

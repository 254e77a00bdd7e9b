"""Shared fixtures and helpers for the ragged test suite.

Every test is checked for leaked runtime threads: a thread whose name starts
with ``ragged-`` (an M or sysmon) that a test started and that is still alive
~2s after the test ends fails that test.  Close every runtime you start
(``with ragged.Runtime(...) as rt:`` or ``ragged.run(...)``).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import ragged  # first: atomics pulls in cffi, which may turn the GIL back on (checked below)
from ragged._core import _platform

THREAD_PREFIX = "ragged-"
LEAK_GRACE = 2.0


def ragged_threads() -> set[threading.Thread]:
    """Every live thread that a ragged runtime started (Ms and sysmon)."""
    return {t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)}


def no_runtime_threads_left(before: set[threading.Thread], timeout: float = 5) -> None:
    """Every runtime thread started since ``before`` has exited (within ``timeout`` seconds)."""
    wait_until(lambda: not (ragged_threads() - before), timeout, "runtime threads to exit")


def _interpreter_line() -> str:
    return f"ragged {ragged.__version__} on {sys.executable}: {_platform.describe()}"


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which interpreter runs the suite and whether the GIL is on (the two builds differ)."""
    return [_interpreter_line()]


def pytest_sessionstart(session: pytest.Session) -> None:
    """``pytest -q`` (``make test``, ``make test-ft``) prints no header: print that line anyway."""
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None and session.config.get_verbosity() < 0:
        tr.write_line(_interpreter_line())


_STRESS_DIR = Path(__file__).resolve().parent / "stress"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/stress carries the ``stress`` marker (``-m "not stress"`` skips them)."""
    for item in items:
        if _STRESS_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.stress)


def pytest_collection_finish(session: pytest.Session) -> None:
    """``make test-ft`` (RAGGED_TEST_FREE_THREADED=1): stop at once unless the GIL really is off.

    Checked after collection, once every test module (and so every C extension
    they import) is loaded: any of them may have turned the GIL back on.
    """
    if os.environ.get("RAGGED_TEST_FREE_THREADED") != "1":
        return
    if not _platform.FREE_THREADED_BUILD:
        pytest.exit(f"RAGGED_TEST_FREE_THREADED=1 but {sys.executable} is not a free-threaded build", returncode=3)
    if _platform.gil_enabled():
        pytest.exit(
            f"the GIL is enabled on {sys.executable} ({_platform.describe()}): the free-threaded suite "
            "would not test parallel Ps; run it with PYTHON_GIL=0 (make test-ft does)",
            returncode=3,
        )


@pytest.fixture(autouse=True)
def no_leaked_runtime_threads() -> Iterator[None]:
    """Fail the test if a runtime thread it started is still alive after it.

    Threads alive before the test are not blamed on it (a leak is reported
    once, by the test that caused it, not by every test after it).
    """
    before = ragged_threads()
    yield
    deadline = time.monotonic() + LEAK_GRACE
    leaked = ragged_threads() - before
    while leaked and time.monotonic() < deadline:
        time.sleep(0.01)
        leaked = {t for t in leaked if t.is_alive()}
    assert not leaked, f"runtime threads still alive {LEAK_GRACE}s after the test: {sorted(t.name for t in leaked)}"


POLLER_KINDS = ["edge", "level"] if hasattr(select, "epoll") else ["level"]


@pytest.fixture(params=POLLER_KINDS)
def poller_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on each kind of network poller the platform has: edge-triggered
    epoll (Linux's default) and level-triggered ``selectors`` (every other platform's)."""
    from ragged._core import _netpoll_sched
    from ragged._core._netpoll_selectors import SelectorsBackend

    if request.param == "level":
        monkeypatch.setattr(_netpoll_sched, "TheBackend", SelectorsBackend)
    return str(request.param)


@pytest.fixture
def no_socket_leak() -> Iterator[None]:
    """Every socket the test opened is closed by its end (the ragged.net tests)."""
    from _nethelpers import open_sockets

    before = open_sockets()
    yield
    deadline = time.monotonic() + 5
    while open_sockets() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert open_sockets() <= before, f"{open_sockets() - before} sockets left open"


@pytest.fixture
def short_switch_interval() -> Iterator[None]:
    """Make the interpreter switch threads very often, to widen race windows."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def wait_until(pred: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``pred`` from a plain thread until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.001)


def run_threads(fn: Callable[[int], object], n: int, timeout: float) -> list[BaseException]:
    """Run ``fn(0)`` .. ``fn(n - 1)`` on ``n`` plain threads at once; return what the calls raised.

    Each thread is joined within ``timeout`` seconds; one still running after
    that fails the test (a hang).
    """
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            fn(i)
        except BaseException as e:  # noqa: BLE001 - returned to the test
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    alive = [t.name for t in threads if t.is_alive()]
    assert not alive, f"threads still running {timeout}s after they were started: {alive}"
    return errors


def spin(n: int = 2000) -> int:
    """A little CPU work that never touches the runtime."""
    s = 0
    for i in range(n):
        s += i * i
    return s


@contextlib.contextmanager
def interrupt_after(seconds: float, interrupt: Callable[[], Any]) -> Iterator[None]:
    """Call ``interrupt`` (a Ctrl-C stand-in) from a timer thread ``seconds`` into the block.

    SIGINT raises KeyboardInterrupt in the main thread for the duration.  On
    leaving the block the timer is cancelled (never delivered later) and a
    pending interrupt lands in a short sleep, still inside the block.
    """
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer = threading.Timer(seconds, interrupt)
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            timer.join()
            time.sleep(0.01)  # a pending interrupt lands here at the latest
    finally:
        signal.signal(signal.SIGINT, old)

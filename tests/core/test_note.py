"""Notes (``ragged._core._note``): the one-shot wakeups Ms, sysmon and coordinators sleep on.

Both kinds are tested on whichever build runs the suite: the choice between
them is about speed, and each must be correct on either build.
"""

from __future__ import annotations

import gc
import os
import threading
import time

import pytest

from ragged._core import _note
from ragged._core._note import FdNote, LockNote, new_note

KINDS = [LockNote, FdNote]


@pytest.mark.parametrize("kind", KINDS)
def test_wakeup_before_sleep_is_kept_once(kind: type) -> None:
    note = kind()
    note.wakeup()
    note.wakeup()  # waking twice is harmless: still one pending wakeup
    assert note.sleep(0) is True
    assert note.sleep(0.01) is False


@pytest.mark.parametrize("kind", KINDS)
def test_timed_sleep_times_out(kind: type) -> None:
    note = kind()
    t = time.monotonic()
    assert note.sleep(0.02) is False
    assert time.monotonic() - t >= 0.015


@pytest.mark.parametrize("kind", KINDS)
def test_clear_drops_a_pending_wakeup(kind: type) -> None:
    note = kind()
    note.wakeup()
    note.clear()
    assert note.sleep(0) is False


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("timeout", [None, 5.0, 100e-6])
def test_sleeper_is_woken_from_another_thread(kind: type, timeout: float | None) -> None:
    """200 round trips: every wakeup reaches the sleeper (sleeping in slices of
    ``timeout``, as the barrier coordinator sleeps in 100µs slices)."""
    ping, pong = kind(), kind()
    n = 200

    def echo() -> None:
        for _ in range(n):
            while not ping.sleep(timeout):
                pass
            pong.wakeup()

    t = threading.Thread(target=echo)
    t.start()
    for _ in range(n):
        ping.wakeup()
        while not pong.sleep(timeout):
            pass
    t.join(10)
    assert not t.is_alive()


@pytest.mark.timeout(30)
def test_fd_note_above_fd_setsize_waits_with_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """A note whose fd select() cannot take still sleeps, times out and wakes."""
    monkeypatch.setattr(_note, "_FD_SETSIZE", 0)
    note = FdNote()
    assert note.sleep(0.005) is False
    threading.Timer(0.02, note.wakeup).start()
    assert note.sleep(5.0) is True


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count open fds")
def test_fd_notes_close_their_fds_when_garbage() -> None:
    def nfds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = nfds()
    notes = [FdNote() for _ in range(50)]
    assert nfds() >= before + 50
    del notes
    gc.collect()
    assert nfds() <= before


def test_new_note_follows_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_note, "gil_enabled", lambda: True)
    assert isinstance(new_note(), LockNote)
    monkeypatch.setattr(_note, "gil_enabled", lambda: False)
    assert isinstance(new_note(), FdNote)

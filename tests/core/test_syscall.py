"""Blocking calls with the P released: ``await ragged.syscall(fn, *args)``."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import spin

import ragged


@pytest.mark.timeout(30)
@pytest.mark.parametrize("attempt", range(3))
def test_blocked_syscall_does_not_stop_other_goroutine_on_one_p(attempt: int) -> None:
    """procs=1: while one goroutine blocks 200ms in a syscall, another finishes 100 gosched rounds."""
    in_syscall = threading.Event()

    def blocking() -> str:
        in_syscall.set()
        time.sleep(0.2)
        return "slept"

    async def sleeper(other_done: threading.Event) -> tuple[str, bool]:
        result = await ragged.syscall(blocking)
        return result, other_done.is_set()

    async def rounds(other_done: threading.Event) -> int:
        while not in_syscall.is_set():
            await ragged.gosched()
        n = 0
        for _ in range(100):
            await ragged.gosched()
            n += 1
        other_done.set()
        return n

    async def main() -> tuple[tuple[str, bool], int, int]:
        other_done = threading.Event()
        s = ragged.go(sleeper, other_done)
        r = ragged.go(rounds, other_done)
        return await s, await r, ragged.metrics()["syscall_handoffs"]

    (result, others_finished_first), n, handoffs = ragged.run(main, procs=1)
    assert result == "slept"
    assert n == 100
    assert others_finished_first, "the 100 gosched rounds waited for the syscall to return"
    assert handoffs >= 1, "the syscall's P was never handed off"


@pytest.mark.timeout(30)
def test_syscall_returns_value_and_runs_on_an_m_thread() -> None:
    def where(a: int, b: int) -> tuple[int, str, int]:
        return a * b, threading.current_thread().name, threading.get_ident()

    async def main() -> tuple[tuple[int, str, int], int]:
        return await ragged.syscall(where, 6, 7), threading.get_ident()

    (value, name, ident), goroutine_ident = ragged.run(main, procs=2)
    assert value == 42
    assert name.startswith("ragged-M")
    assert ident == goroutine_ident, "the blocking call ran on another thread than the goroutine's M"


@pytest.mark.timeout(30)
def test_syscall_exception_is_raised_in_the_goroutine() -> None:
    def fail() -> None:
        raise OSError(5, "io failed")

    async def main() -> str:
        try:
            await ragged.syscall(fail)
        except OSError as e:
            return f"caught {e.errno}"
        return "not raised"

    assert ragged.run(main, procs=1) == "caught 5"


@pytest.mark.timeout(30)
def test_goroutine_keeps_running_after_syscall() -> None:
    """After the syscall the goroutine holds a P again and may use the whole API."""

    async def child() -> int:
        return 1

    async def main() -> list[int]:
        out = []
        for i in range(20):
            v = await ragged.syscall(time.sleep, 0.001)
            assert v is None
            assert isinstance(ragged.current_p(), ragged.P)
            out.append(await ragged.go(child) + i)
            await ragged.gosched()
        return out

    assert ragged.run(main, procs=2) == [1 + i for i in range(20)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [1, 2])
def test_more_syscalls_in_flight_than_ps(procs: int) -> None:
    """Blocked syscalls hold no P: many block at once on procs Ps."""
    lock = threading.Lock()
    current = 0
    peak = 0

    def blocking(i: int) -> int:
        nonlocal current, peak
        with lock:
            current += 1
            peak = max(peak, current)
        time.sleep(0.05)
        with lock:
            current -= 1
        return i

    async def worker(i: int) -> int:
        return await ragged.syscall(blocking, i)

    async def main() -> list[int]:
        gs = [ragged.go(worker, i) for i in range(16)]
        return [await g for g in gs]

    assert ragged.run(main, procs=procs) == list(range(16))
    assert peak > procs, f"at most {peak} syscalls were ever in flight on {procs} P(s)"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [1, 2, 4])
def test_mixed_syscalls_and_cpu_work_give_exact_results(procs: int) -> None:
    def short_block(i: int) -> int:
        if i % 3 == 0:
            time.sleep(0.0005)
        return i * 2

    async def worker(i: int) -> int:
        total = 0
        for j in range(5):
            total += await ragged.syscall(short_block, i + j)
            spin(200)
            await ragged.checkpoint()
        return total

    async def main() -> list[int]:
        gs = [ragged.go(worker, i) for i in range(300)]
        return [await g for g in gs]

    expected = [sum(2 * (i + j) for j in range(5)) for i in range(300)]
    assert ragged.run(main, procs=procs) == expected


@pytest.mark.timeout(30)
def test_syscall_from_plain_thread_fails_cleanly() -> None:
    coro = ragged.syscall(time.sleep, 0)
    with pytest.raises(ragged.NotInGoroutine):
        coro.send(None)

"""The bad-input table: every public function and method with wrong input.

Each row is one call with a wrong type or value -- non-callables, plain
functions where coroutines belong, negative capacities, NaN or non-number
timeouts, wall-clock deadlines on monotonic APIs, ``procs=0``, closed
channels, calls made from the wrong kind of thread, a handle from another
runtime -- and the *exact* exception type it must raise (``type(err) is
expected``, not a subclass).  A negative or infinite duration is not bad
input: it means already expired / never (``test_timeouts.py``).  After every row the runtime the
call was made against must still work: a barrier runs exactly once per P, a
spawn+join returns, and the scheduler is quiescent.

Rows run either on the test's plain thread (``T``) or inside a goroutine
(``G``: the row is an ``async`` function and the goroutine returns what it
raised).  The policy the rows encode (``ragged/_errors.py``): bad arguments
are ``TypeError`` / ``ValueError``; a closed channel is ``ChanClosed``; a
closed runtime is ``RuntimeClosed``; a goroutine-only call elsewhere is
``NotInGoroutine``, a blocking plain-thread call in a goroutine
``NotInPlainThread``; a call that would deadlock the world is
``BarrierError``; other misuse the runtime detects is ``RaggedError``.

The rows' machinery and shared builders are in ``_badinput.py``; handles
from another runtime (mostly not errors) in ``test_cross_runtime.py``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from _badinput import (
    NAN,
    Env,
    G,
    Row,
    T,
    async_fn,
    async_gen,
    closed_chan,
    closed_runtime,
    conn,
    drive,
    finished,
    g_call,
    g_go,
    in_asyncio,
    parked,
    run_row,
    sync_fn,
)
from _invariants import check_still_works

import ragged

HUGE = 10**400  # beyond any float


def enter_stw_twice(e: Env) -> None:
    with e.rt.stop_the_world("outer"):
        with e.rt.stop_the_world("inner"):
            pass


def barrier_inside_stw(e: Env) -> None:
    with e.rt.stop_the_world("outer"):
        e.rt.for_each_p(lambda p: None)


def join_inside_stw(e: Env) -> None:
    g = parked(e)
    with e.rt.stop_the_world("outer"):
        g.result(timeout=1)


def barrier_inside_fn(e: Env) -> None:
    e.rt.for_each_p(lambda p: e.rt.for_each_p(lambda q: None))


def stw_inside_fn(e: Env) -> None:
    def fn(p: ragged.P) -> None:
        with e.rt.stop_the_world("inside fn"):
            pass

    e.rt.for_each_p(fn)


# ---------------------------------------------------------------- goroutine-side rows


async def g_stw_twice(e: Env) -> None:
    async with ragged.stop_the_world("outer"):
        async with ragged.stop_the_world("inner"):
            pass


async def g_barrier_inside_stw(e: Env) -> None:
    async with ragged.stop_the_world("outer"):
        await ragged.for_each_p(lambda p: None)


async def g_sleep_inside_stw(e: Env) -> None:
    async with ragged.stop_the_world("outer"):
        await ragged.sleep(0.01)


async def g_gosched_inside_stw(e: Env) -> None:
    async with ragged.stop_the_world("outer"):
        await ragged.gosched()


async def g_recv_inside_stw(e: Env) -> None:
    ch: ragged.Chan[int] = ragged.Chan()
    async with ragged.stop_the_world("outer"):
        await ch.recv()


async def g_lock_inside_stw(e: Env) -> None:
    mu = ragged.Mutex()
    await mu.lock()
    async with ragged.stop_the_world("outer"):
        await mu.lock()


async def g_select_inside_stw(e: Env) -> None:
    ch: ragged.Chan[int] = ragged.Chan()
    async with ragged.stop_the_world("outer"):
        await ragged.select(ch.recv_case())


async def g_once_reentrant(e: Env) -> None:
    once = ragged.Once()

    async def inner() -> None:
        await once.do(sync_fn)

    await once.do(inner)


async def g_await_asyncio_future(e: Env) -> None:
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        await loop.create_future()
    finally:
        loop.close()


async def g_result_blocking(e: Env) -> None:
    g = ragged.go(async_fn)
    g.result(timeout=1)


async def g_recv_blocking(e: Env) -> None:
    ragged.Chan().recv_blocking(timeout=0.01)


async def g_send_blocking(e: Env) -> None:
    ragged.Chan().send_blocking(1, timeout=0.01)


async def g_wait_blocking(e: Env) -> None:
    wg = ragged.WaitGroup()
    wg.add(1)
    wg.wait_blocking(timeout=0.01)


async def g_rt_for_each_p(e: Env) -> None:
    e.rt.for_each_p(lambda p: None)


async def g_rt_stop_the_world(e: Env) -> None:
    with e.rt.stop_the_world("plain with in a goroutine"):
        pass


async def g_rt_set_procs(e: Env) -> None:
    e.rt.set_procs(2)


async def g_rt_close(e: Env) -> None:
    e.rt.close()


async def g_send_closed(e: Env) -> None:
    await closed_chan().send(1)


async def g_recv_closed(e: Env) -> None:
    ch: ragged.Chan[int] = ragged.Chan()
    ch.close()
    await ch.recv()


async def g_select_send_closed(e: Env) -> None:
    await ragged.select(closed_chan().send_case(1))


async def g_select_send_closed_while_waiting(e: Env) -> None:
    ch: ragged.Chan[int] = ragged.Chan()
    ragged.go(_close_soon, ch)
    await ragged.select(ch.send_case(1))


async def g_send_closed_while_waiting(e: Env) -> None:
    ch: ragged.Chan[int] = ragged.Chan()
    ragged.go(_close_soon, ch)
    await ch.send(1)


async def _close_soon(ch: ragged.Chan[int]) -> None:
    await ragged.sleep(0.01)
    ch.close()


async def g_cond_wait_unlocked(e: Env) -> None:
    await ragged.Cond().wait()


async def g_timer_reset_nan(e: Env) -> None:
    t = ragged.Timer(10)
    try:
        t.reset(NAN)
    finally:
        t.stop()


async def g_ticker_reset_zero(e: Env) -> None:
    t = ragged.Ticker(10)
    try:
        t.reset(0)
    finally:
        t.stop()


async def g_go_closed_runtime(e: Env) -> None:
    e.closed_rt.go(async_fn)


async def g_group_go_after_exit(e: Env) -> None:
    async with ragged.Group() as g:
        pass
    g.go(async_fn)


async def g_group_wait_in_block(e: Env) -> None:
    g = ragged.Group()
    await g.__aenter__()  # not `async with`: its exit would wrap the error in an ExceptionGroup
    try:
        await g.wait()
    finally:
        await g.__aexit__(None, None, None)


async def g_group_enter_twice(e: Env) -> None:
    g = ragged.Group()
    await g.__aenter__()
    try:
        await g.__aenter__()
    finally:
        await g.__aexit__(None, None, None)


async def g_ctx_wait_blocking(e: Env) -> None:
    ragged.background().wait_blocking(timeout=0.01)


ROWS: list[Row] = [
    # ragged.run
    Row("run-sync-fn", T, lambda e: ragged.run(sync_fn), TypeError),
    Row("run-non-callable", T, lambda e: ragged.run(42), TypeError),
    Row("run-none", T, lambda e: ragged.run(None), TypeError),
    Row("run-async-gen", T, lambda e: ragged.run(async_gen), TypeError),
    Row("run-procs-0", T, lambda e: ragged.run(async_fn, procs=0), ValueError),
    Row("run-procs-negative", T, lambda e: ragged.run(async_fn, procs=-2), ValueError),
    Row("run-procs-str", T, lambda e: ragged.run(async_fn, procs="2"), TypeError),
    Row("run-procs-float", T, lambda e: ragged.run(async_fn, procs=2.0), TypeError),
    Row("run-unknown-setting", T, lambda e: ragged.run(async_fn, bogus=1), TypeError),
    Row("run-wrong-arity", T, lambda e: ragged.run(_double, 1, 2), TypeError),
    Row("run-inside-goroutine", G, lambda e: _run_nested(), ragged.NotInPlainThread),
    # Runtime(...) settings
    Row("Runtime-procs-0", T, lambda e: ragged.Runtime(procs=0), ValueError),
    Row("Runtime-procs-negative", T, lambda e: ragged.Runtime(procs=-1), ValueError),
    Row("Runtime-procs-str", T, lambda e: ragged.Runtime(procs="4"), TypeError),
    Row("Runtime-procs-bool", T, lambda e: ragged.Runtime(procs=True), TypeError),
    Row("Runtime-procs-float", T, lambda e: ragged.Runtime(procs=1.5), TypeError),
    Row("Runtime-unknown-setting", T, lambda e: ragged.Runtime(procs=1, bogus=1), TypeError),
    Row("Runtime-syscall_retake-negative", T, lambda e: ragged.Runtime(procs=1, syscall_retake=-1), ValueError),
    Row("Runtime-syscall_retake-nan", T, lambda e: ragged.Runtime(procs=1, syscall_retake=NAN), ValueError),
    Row("Runtime-syscall_retake-str", T, lambda e: ragged.Runtime(procs=1, syscall_retake="1"), TypeError),
    Row("Runtime-preempt_after-none", T, lambda e: ragged.Runtime(procs=1, preempt_after=None), TypeError),
    Row("Runtime-straggler_timeout-negative", T, lambda e: ragged.Runtime(procs=1, straggler_timeout=-1), ValueError),
    Row("Runtime-shutdown_timeout-negative", T, lambda e: ragged.Runtime(procs=1, shutdown_timeout=-0.5), ValueError),
    Row("Runtime-barrier_step_aside-negative", T, lambda e: ragged.Runtime(procs=1, barrier_step_aside=-1), ValueError),
    Row("Runtime-max_threads-0", T, lambda e: ragged.Runtime(procs=1, max_threads=0), ValueError),
    Row("Runtime-max_threads-float", T, lambda e: ragged.Runtime(procs=1, max_threads=2.5), TypeError),
    Row("Runtime-detect_deadlock-int", T, lambda e: ragged.Runtime(procs=1, detect_deadlock=1), TypeError),
    Row("Runtime-debug-str", T, lambda e: ragged.Runtime(procs=1, debug="yes"), TypeError),
    Row("Runtime-chaos-str", T, lambda e: ragged.Runtime(procs=1, chaos="7"), TypeError),
    Row("Runtime-chaos-float", T, lambda e: ragged.Runtime(procs=1, chaos=7.5), TypeError),
    Row("Runtime-block_report-negative", T, lambda e: ragged.Runtime(procs=1, block_report=-0.1), ValueError),
    # Found by the fuzz test: an int beyond any float raised OverflowError (10**400 is inf, as it means).
    Row(
        "Runtime-shutdown_timeout-huge-negative",
        T,
        lambda e: ragged.Runtime(procs=1, shutdown_timeout=-(10**400)),
        ValueError,
    ),
    Row("Runtime-straggler_timeout-complex", T, lambda e: ragged.Runtime(procs=1, straggler_timeout=1j), TypeError),
    Row("Ticker-nan", G, lambda e: g_call(ragged.Ticker, NAN), ValueError),
    Row("Ticker-decimal", G, lambda e: g_call(ragged.Ticker, Decimal("0.1")), TypeError),
    Row("Runtime-block_report-nan", T, lambda e: ragged.Runtime(procs=1, block_report=NAN), ValueError),
    Row("Runtime-block_report-str", T, lambda e: ragged.Runtime(procs=1, block_report="0.1"), TypeError),
    Row("Runtime-block_report-bool", T, lambda e: ragged.Runtime(procs=1, block_report=True), TypeError),
    Row("Runtime-block_report-below-preempt", T, lambda e: ragged.Runtime(procs=1, block_report=0.001), ValueError),
    Row("run-block_report-str", T, lambda e: ragged.run(async_fn, block_report="1"), TypeError),
    # rt.go / rt.submit
    Row("rt.go-sync-fn", T, lambda e: e.rt.go(sync_fn), TypeError),
    Row("rt.go-non-callable", T, lambda e: e.rt.go(42), TypeError),
    Row("rt.go-none", T, lambda e: e.rt.go(None), TypeError),
    Row("rt.go-lambda-returning-coroutine", T, lambda e: e.rt.go(lambda: async_fn()), TypeError),
    Row("rt.go-async-gen", T, lambda e: e.rt.go(async_gen), TypeError),
    Row("rt.go-coroutine-with-args", T, lambda e: e.rt.go(async_fn(), 1), TypeError),
    Row("rt.go-wrong-arity", T, lambda e: e.rt.go(_double), TypeError),
    Row("rt.go-name-int", T, lambda e: e.rt.go(async_fn, name=5), TypeError),
    Row("rt.go-labels-list", T, lambda e: e.rt.go(async_fn, labels=["a"]), TypeError),
    Row("rt.go-closed-runtime", T, lambda e: closed_runtime().go(async_fn), ragged.RuntimeClosed),
    Row("rt.submit-sync-fn", T, lambda e: e.rt.submit(sync_fn), TypeError),
    Row("rt.submit-non-callable", T, lambda e: e.rt.submit("main"), TypeError),
    Row("rt.submit-closed-runtime", T, lambda e: closed_runtime().submit(async_fn), ragged.RuntimeClosed),
    # rt.for_each_p
    Row("rt.for_each_p-non-callable", T, lambda e: e.rt.for_each_p(42), TypeError),
    Row("rt.for_each_p-none", T, lambda e: e.rt.for_each_p(None), TypeError),
    Row("rt.for_each_p-async-fn", T, lambda e: e.rt.for_each_p(async_fn), TypeError),
    # fn runs on every P; each P's error is kept, so two Ps give a group (docs/design.md).
    Row("rt.for_each_p-fn-wrong-arity", T, lambda e: e.rt.for_each_p(lambda: None), ExceptionGroup, TypeError),
    Row("rt.for_each_p-timeout-nan", T, lambda e: e.rt.for_each_p(sync_fn, timeout=NAN), ValueError),
    Row("rt.for_each_p-timeout-str", T, lambda e: e.rt.for_each_p(sync_fn, timeout="1"), TypeError),
    Row("rt.for_each_p-closed-runtime", T, lambda e: closed_runtime().for_each_p(sync_fn), ragged.RuntimeClosed),
    Row("rt.for_each_p-inside-fn", T, barrier_inside_fn, ExceptionGroup, ragged.BarrierError),
    Row("rt.for_each_p-inside-stw", T, barrier_inside_stw, ragged.BarrierError),
    Row("rt.for_each_p-in-goroutine", G, g_rt_for_each_p, ragged.NotInPlainThread),
    # rt.stop_the_world
    Row("rt.stop_the_world-reason-int", T, lambda e: e.rt.stop_the_world(5), TypeError),
    Row("rt.stop_the_world-twice", T, enter_stw_twice, ragged.BarrierError),
    Row("rt.stop_the_world-inside-fn", T, stw_inside_fn, ExceptionGroup, ragged.BarrierError),
    Row("rt.stop_the_world-join-inside", T, join_inside_stw, ragged.RaggedError),
    Row(
        "rt.stop_the_world-closed", T, lambda e: closed_runtime().stop_the_world("x").__enter__(), ragged.RuntimeClosed
    ),
    Row("rt.stop_the_world-in-goroutine", G, g_rt_stop_the_world, ragged.NotInPlainThread),
    # rt.set_procs
    Row("rt.set_procs-0", T, lambda e: e.rt.set_procs(0), ValueError),
    Row("rt.set_procs-negative", T, lambda e: e.rt.set_procs(-4), ValueError),
    Row("rt.set_procs-str", T, lambda e: e.rt.set_procs("2"), TypeError),
    Row("rt.set_procs-none", T, lambda e: e.rt.set_procs(None), TypeError),
    Row("rt.set_procs-float", T, lambda e: e.rt.set_procs(2.0), TypeError),
    Row("rt.set_procs-on_retire-int", T, lambda e: e.rt.set_procs(1, on_retire=5), TypeError),
    Row("rt.set_procs-closed", T, lambda e: closed_runtime().set_procs(2), ragged.RuntimeClosed),
    Row("rt.set_procs-in-goroutine", G, g_rt_set_procs, ragged.NotInPlainThread),
    Row("rt.close-in-goroutine", G, g_rt_close, ragged.NotInPlainThread),
    Row("rt.close-timeout-nan", T, lambda e: e.rt.close(timeout=NAN), ValueError),
    Row("rt.close-timeout-str", T, lambda e: e.rt.close(timeout="5"), TypeError),
    # ragged.go / sleep / syscall / for_each_p / set_procs / stop_the_world in goroutines
    Row("go-outside-goroutine", T, lambda e: ragged.go(async_fn), ragged.NotInGoroutine),
    Row("go-sync-fn", G, lambda e: g_go(sync_fn), TypeError),
    Row("go-non-callable", G, lambda e: g_go(42), TypeError),
    Row("go-name-int", G, lambda e: g_go(async_fn, name=3), TypeError),
    Row("sleep-complex", G, lambda e: ragged.sleep(1j), TypeError),
    Row("sleep-nan", G, lambda e: ragged.sleep(NAN), ValueError),
    Row("sleep-str", G, lambda e: ragged.sleep("1"), TypeError),
    Row("sleep-none", G, lambda e: ragged.sleep(None), TypeError),
    Row("sleep-bool", G, lambda e: ragged.sleep(True), TypeError),
    Row("sleep-outside-goroutine", T, lambda e: drive(ragged.sleep(0.01)), ragged.NotInGoroutine),
    Row("wait_readable-str", G, lambda e: ragged.wait_readable("stdin"), TypeError),
    Row("wait_readable-bool", G, lambda e: ragged.wait_readable(True), TypeError),
    Row("wait_readable-negative-fd", G, lambda e: ragged.wait_readable(-1), ValueError),
    Row("wait_readable-closed-fd", G, lambda e: ragged.wait_readable(closed_fd()), ragged.NotPollable),
    Row("wait_readable-timeout-nan", G, lambda e: ragged.wait_readable(0, timeout=NAN), ValueError),
    Row("wait_readable-outside-goroutine", T, lambda e: drive(ragged.wait_readable(0)), ragged.NotInGoroutine),
    Row("wait_writable-none", G, lambda e: ragged.wait_writable(None), TypeError),
    Row("wait_writable-timeout-str", G, lambda e: ragged.wait_writable(1, timeout="1"), TypeError),
    Row("wait_writable-outside-goroutine", T, lambda e: drive(ragged.wait_writable(1)), ragged.NotInGoroutine),
    Row("syscall-non-callable", G, lambda e: ragged.syscall(42), TypeError),
    Row("syscall-async-fn", G, lambda e: ragged.syscall(async_fn), TypeError),
    Row("syscall-outside-goroutine", T, lambda e: drive(ragged.syscall(sync_fn)), ragged.NotInGoroutine),
    Row("for_each_p-non-callable", G, lambda e: ragged.for_each_p(42), TypeError),
    Row("for_each_p-async-fn", G, lambda e: ragged.for_each_p(async_fn), TypeError),
    Row("for_each_p-outside-goroutine", T, lambda e: drive(ragged.for_each_p(sync_fn)), ragged.NotInGoroutine),
    Row("set_procs-0", G, lambda e: ragged.set_procs(0), ValueError),
    Row("set_procs-str", G, lambda e: ragged.set_procs("2"), TypeError),
    Row("set_procs-on_retire-int", G, lambda e: ragged.set_procs(1, on_retire=1), TypeError),
    Row("set_procs-outside-goroutine", T, lambda e: drive(ragged.set_procs(2)), ragged.NotInGoroutine),
    Row("stop_the_world-reason-int", G, lambda e: _enter_g_stw(5), TypeError),
    Row("stop_the_world-outside-goroutine", T, lambda e: ragged.stop_the_world("x"), ragged.NotInGoroutine),
    Row("stop_the_world-twice", G, g_stw_twice, ragged.BarrierError),
    Row("for_each_p-inside-stw", G, g_barrier_inside_stw, ragged.BarrierError),
    Row("sleep-inside-stw", G, g_sleep_inside_stw, ragged.RaggedError),
    Row("gosched-inside-stw", G, g_gosched_inside_stw, ragged.RaggedError),
    Row("chan-recv-inside-stw", G, g_recv_inside_stw, ragged.RaggedError),
    Row("mutex-lock-inside-stw", G, g_lock_inside_stw, ragged.RaggedError),
    Row("select-inside-stw", G, g_select_inside_stw, ragged.RaggedError),
    Row("current_p-outside-goroutine", T, lambda e: ragged.current_p(), ragged.NotInGoroutine),
    Row("current_goroutine-outside-goroutine", T, lambda e: ragged.current_goroutine(), ragged.NotInGoroutine),
    Row("gosched-in-asyncio", T, lambda e: in_asyncio(ragged.gosched), ragged.NotInGoroutine),
    Row("await-asyncio-future", G, g_await_asyncio_future, ragged.RaggedError),
    # select / after / Timer / Ticker
    Row("select-no-cases", G, lambda e: ragged.select(), ValueError),
    Row("select-non-case", G, lambda e: ragged.select(42), TypeError),
    Row("select-default-not-bool", G, lambda e: ragged.select(ragged.Chan().recv_case(), default="no"), TypeError),
    Row("select-send-closed", G, g_select_send_closed, ragged.ChanClosed),
    Row("select-send-closed-while-waiting", G, g_select_send_closed_while_waiting, ragged.ChanClosed),
    Row(
        "select-outside-goroutine", T, lambda e: drive(ragged.select(ragged.Chan().recv_case())), ragged.NotInGoroutine
    ),
    Row("after-nan", G, lambda e: g_call(ragged.after, NAN), ValueError),
    Row("after-str", G, lambda e: g_call(ragged.after, "1"), TypeError),
    Row("after-outside-goroutine", T, lambda e: ragged.after(1), ragged.NotInGoroutine),
    Row("after-runtime-int", T, lambda e: ragged.after(1, runtime=42), TypeError),
    Row("after-runtime-closed", T, lambda e: ragged.after(1, runtime=closed_runtime()), ragged.RuntimeClosed),
    Row("Timer-nan", G, lambda e: g_call(ragged.Timer, NAN), ValueError),
    Row("Timer-str", G, lambda e: g_call(ragged.Timer, "1"), TypeError),
    Row("Timer-outside-goroutine", T, lambda e: ragged.Timer(1), ragged.NotInGoroutine),
    Row("Timer-runtime-int", T, lambda e: ragged.Timer(1, runtime=42), TypeError),
    Row("Timer.reset-nan", G, g_timer_reset_nan, ValueError),
    Row("Ticker-0", G, lambda e: g_call(ragged.Ticker, 0), ValueError),
    Row("Ticker-negative", G, lambda e: g_call(ragged.Ticker, -1), ValueError),
    Row("Ticker-str", G, lambda e: g_call(ragged.Ticker, "1"), TypeError),
    Row("Ticker.reset-0", G, g_ticker_reset_zero, ValueError),
    # Chan
    Row("Chan-negative", T, lambda e: ragged.Chan(-1), ValueError),
    Row("Chan-str", T, lambda e: ragged.Chan("1"), TypeError),
    Row("Chan-float", T, lambda e: ragged.Chan(1.5), TypeError),
    Row("Chan-bool", T, lambda e: ragged.Chan(True), TypeError),
    Row("Chan-none", T, lambda e: ragged.Chan(None), TypeError),
    Row("Chan.close-twice", T, lambda e: closed_chan().close(), ragged.ChanClosed),
    Row("Chan.try_send-closed", T, lambda e: closed_chan().try_send(1), ragged.ChanClosed),
    Row("Chan.send_blocking-closed", T, lambda e: closed_chan().send_blocking(1), ragged.ChanClosed),
    Row("Chan.recv_blocking-closed", T, lambda e: _closed_empty().recv_blocking(), ragged.ChanClosed),
    Row("Chan.send-closed", G, g_send_closed, ragged.ChanClosed),
    Row("Chan.send-closed-while-waiting", G, g_send_closed_while_waiting, ragged.ChanClosed),
    Row("Chan.recv-closed", G, g_recv_closed, ragged.ChanClosed),
    Row("Chan.send_blocking-timeout-nan", T, lambda e: ragged.Chan().send_blocking(1, timeout=NAN), ValueError),
    Row("Chan.send_blocking-timeout-str", T, lambda e: ragged.Chan().send_blocking(1, timeout="1"), TypeError),
    Row("Chan.recv_blocking-timeout-bool", T, lambda e: ragged.Chan().recv_blocking(timeout=True), TypeError),
    Row("Chan.recv_blocking-timeout-nan", T, lambda e: ragged.Chan().recv_blocking(timeout=NAN), ValueError),
    Row("Chan.recv_blocking-in-goroutine", G, g_recv_blocking, ragged.NotInPlainThread),
    Row("Chan.send_blocking-in-goroutine", G, g_send_blocking, ragged.NotInPlainThread),
    Row("Chan.send-outside-goroutine", T, lambda e: drive(ragged.Chan(1).send(1)), ragged.NotInGoroutine),
    Row("Chan.recv-outside-goroutine", T, lambda e: drive(ragged.Chan(1).recv()), ragged.NotInGoroutine),
    # sync
    Row("WaitGroup.add-str", T, lambda e: ragged.WaitGroup().add("1"), TypeError),
    Row("WaitGroup.add-float", T, lambda e: ragged.WaitGroup().add(1.0), TypeError),
    Row("WaitGroup.add-negative-counter", T, lambda e: ragged.WaitGroup().add(-1), ValueError),
    Row("WaitGroup.done-at-zero", T, lambda e: ragged.WaitGroup().done(), ValueError),
    Row("WaitGroup.wait_blocking-timeout-nan", T, lambda e: _wg1().wait_blocking(timeout=NAN), ValueError),
    Row("WaitGroup.wait_blocking-in-goroutine", G, g_wait_blocking, ragged.NotInPlainThread),
    Row("WaitGroup.wait-outside-goroutine", T, lambda e: drive(_wg1().wait()), ragged.NotInGoroutine),
    Row("Mutex.unlock-unlocked", T, lambda e: ragged.Mutex().unlock(), ragged.RaggedError),
    Row("Mutex.lock-outside-goroutine", T, lambda e: drive(ragged.Mutex().lock()), ragged.NotInGoroutine),
    Row("RWMutex.unlock-unlocked", T, lambda e: ragged.RWMutex().unlock(), ragged.RaggedError),
    Row("RWMutex.runlock-unlocked", T, lambda e: ragged.RWMutex().runlock(), ragged.RaggedError),
    Row("Semaphore-negative", T, lambda e: ragged.Semaphore(-1), ValueError),
    Row("Semaphore-str", T, lambda e: ragged.Semaphore("2"), TypeError),
    Row("Semaphore-float", T, lambda e: ragged.Semaphore(1.5), TypeError),
    Row("Semaphore.release-too-many", T, lambda e: ragged.Semaphore(1).release(), ValueError),
    Row("Once.do-non-callable", G, lambda e: ragged.Once().do(42), TypeError),
    Row("Once.do-reentrant", G, g_once_reentrant, ragged.RaggedError),
    Row("Cond-non-locker", T, lambda e: ragged.Cond(42), TypeError),
    Row("Cond.wait-unlocked", G, g_cond_wait_unlocked, ragged.RaggedError),
    # Context
    Row("with_cancel-int", T, lambda e: ragged.with_cancel(42), TypeError),
    Row("with_cancel-none", T, lambda e: ragged.with_cancel(None), TypeError),
    Row("with_value-none-key", T, lambda e: ragged.with_value(ragged.background(), None, 1), TypeError),
    Row("with_value-bad-parent", T, lambda e: ragged.with_value("ctx", "k", 1), TypeError),
    Row("with_deadline-str", T, lambda e: ragged.with_deadline(ragged.background(), "soon", runtime=e.rt), TypeError),
    Row("with_deadline-nan", T, lambda e: ragged.with_deadline(ragged.background(), NAN, runtime=e.rt), ValueError),
    Row("with_deadline-bool", T, lambda e: ragged.with_deadline(ragged.background(), True, runtime=e.rt), TypeError),
    # A wall-clock deadline (Go's WithDeadline takes one) would silently never expire: refused.
    Row(
        "with_deadline-wall-clock", T, lambda e: ragged.with_deadline(ragged.background(), time.time() + 1), ValueError
    ),
    Row("with_deadline-bad-parent", T, lambda e: ragged.with_deadline(1, time.monotonic() + 1), TypeError),
    Row("with_timeout-nan", T, lambda e: ragged.with_timeout(ragged.background(), NAN, runtime=e.rt), ValueError),
    Row("with_timeout-str", T, lambda e: ragged.with_timeout(ragged.background(), "1", runtime=e.rt), TypeError),
    Row("with_timeout-no-runtime", T, lambda e: ragged.with_timeout(ragged.background(), 1), ragged.NotInGoroutine),
    Row("with_timeout-runtime-int", T, lambda e: ragged.with_timeout(ragged.background(), 1, runtime=42), TypeError),
    Row(
        "with_timeout-runtime-closed",
        T,
        lambda e: ragged.with_timeout(ragged.background(), 1, runtime=closed_runtime()),
        ragged.RuntimeClosed,
    ),
    Row("Context.wait-outside-goroutine", T, lambda e: drive(ragged.background().wait()), ragged.NotInGoroutine),
    Row("Context.wait_blocking-in-goroutine", G, g_ctx_wait_blocking, ragged.NotInPlainThread),
    Row("Context.wait_blocking-nan", T, lambda e: ragged.background().wait_blocking(timeout=NAN), ValueError),
    Row("Context.wait_blocking-str", T, lambda e: ragged.background().wait_blocking(timeout="1"), TypeError),
    # Group
    Row("Group-limit-0", T, lambda e: ragged.Group(limit=0), ValueError),
    Row("Group-limit-float", T, lambda e: ragged.Group(limit=2.0), TypeError),
    Row("Group-ctx-int", T, lambda e: ragged.Group(ctx=42), TypeError),
    Row("Group-name-int", T, lambda e: ragged.Group(name=1), TypeError),
    Row("Group.go-outside-goroutine", T, lambda e: ragged.Group().go(async_fn), ragged.NotInGoroutine),
    Row("Group.go-sync-fn", G, lambda e: g_call(ragged.Group().go, sync_fn), TypeError),
    Row("Group.go-labels-list", G, lambda e: g_call(lambda: ragged.Group().go(async_fn, labels=[1])), TypeError),
    Row("Group.go-after-exit", G, g_group_go_after_exit, ragged.RaggedError),
    Row("Group.try_go-sync-fn", G, lambda e: g_call(ragged.Group(limit=1).try_go, sync_fn), TypeError),
    Row(
        "Group.go_when_free-outside-goroutine",
        T,
        lambda e: drive(ragged.Group().go_when_free(async_fn)),
        ragged.NotInGoroutine,
    ),
    Row("Group.wait-outside-goroutine", T, lambda e: drive(ragged.Group().wait()), ragged.NotInGoroutine),
    Row("Group.wait-in-its-block", G, g_group_wait_in_block, ragged.RaggedError),
    Row("Group-entered-twice", G, g_group_enter_twice, ragged.RaggedError),
    # after_func
    Row("after_func-sync-fn", G, lambda e: g_call(ragged.after_func, 1, sync_fn), TypeError),
    Row("after_func-nan", G, lambda e: g_call(ragged.after_func, NAN, async_fn), ValueError),
    Row("after_func-str", G, lambda e: g_call(ragged.after_func, "1", async_fn), TypeError),
    Row("after_func-outside-goroutine", T, lambda e: ragged.after_func(1, async_fn), ragged.NotInGoroutine),
    Row("after_func-runtime-int", T, lambda e: ragged.after_func(1, async_fn, runtime=42), TypeError),
    Row(
        "after_func-runtime-closed",
        T,
        lambda e: ragged.after_func(1, async_fn, runtime=closed_runtime()),
        ragged.RuntimeClosed,
    ),
    # AtomicInt
    Row("AtomicInt-float", T, lambda e: ragged.AtomicInt(1.0), TypeError),
    Row("AtomicInt-bool", T, lambda e: ragged.AtomicInt(True), TypeError),
    Row("AtomicInt-2**63", T, lambda e: ragged.AtomicInt(2**63), OverflowError),
    Row("AtomicInt.add-str", T, lambda e: ragged.AtomicInt().add("1"), TypeError),
    Row("AtomicInt.store-too-small", T, lambda e: ragged.AtomicInt().store(-(2**63) - 1), OverflowError),
    Row(
        "AtomicInt.compare_and_swap-overflow", T, lambda e: ragged.AtomicInt().compare_and_swap(0, 2**64), OverflowError
    ),
    # labels
    Row("set_labels-outside-goroutine", T, lambda e: ragged.set_labels(k="v"), ragged.NotInGoroutine),
    Row("set_labels-non-mapping", G, lambda e: g_call(ragged.set_labels, 42), TypeError),
    Row("set_labels-int-key", G, lambda e: g_call(ragged.set_labels, {1: "v"}), TypeError),
    Row("set_labels-empty-key", G, lambda e: g_call(ragged.set_labels, {"": "v"}), ValueError),
    Row("set_labels-list-value", G, lambda e: g_call(ragged.set_labels, {"k": [1]}), TypeError),
    Row("labels-outside-goroutine", T, lambda e: ragged.labels(), ragged.NotInGoroutine),
    Row("rt.go-labels-bad-value", T, lambda e: e.rt.go(async_fn, labels={"k": object()}), TypeError),
    Row("rt.go-labels-int-key", T, lambda e: e.rt.go(async_fn, labels={1: "v"}), TypeError),
    # PerP
    Row("PerP-non-callable", T, lambda e: ragged.PerP(42), TypeError),
    Row("PerP.get-outside-goroutine", T, lambda e: ragged.PerP(list).get(), ragged.NotInGoroutine),
    # Goroutine handles
    Row("g.result-timeout-nan", T, lambda e: parked(e).result(timeout=NAN), ValueError),
    Row("g.result-timeout-str", T, lambda e: parked(e).result(timeout="1"), TypeError),
    Row("g.exception-timeout-nan", T, lambda e: parked(e).exception(timeout=NAN), ValueError),
    Row("g.result-in-goroutine", G, g_result_blocking, ragged.NotInPlainThread),
    Row("g.name-int", T, lambda e: setattr(finished(e), "name", 7), TypeError),
    Row("await-g-outside-goroutine", T, lambda e: drive(parked(e).__await__()), ragged.NotInGoroutine),
    # ragged.net connection deadlines (the other ragged.net rows are in test_net.py)
    Row("Conn.set_deadline-wall-clock", T, lambda e: conn(e).set_deadline(time.time() + 0.2), ValueError),
    Row("Conn.set_deadline-nan", T, lambda e: conn(e).set_deadline(NAN), ValueError),
    Row("Conn.set_read_deadline-str", T, lambda e: conn(e).set_read_deadline("soon"), TypeError),
    Row("Conn.set_write_deadline-wall-clock", T, lambda e: conn(e).set_write_deadline(time.time()), ValueError),
    # the runtime-level diagnostics outside a goroutine
    Row("dump-outside-goroutine", T, lambda e: ragged.dump(), ragged.NotInGoroutine),
    Row("metrics-outside-goroutine", T, lambda e: ragged.metrics(), ragged.NotInGoroutine),
    Row("current_runtime-outside-goroutine", T, lambda e: ragged.current_runtime(), ragged.NotInGoroutine),
    # a closed runtime used from one of its own goroutine handles' perspective
    Row("go-on-closed-runtime-from-goroutine", G, g_go_closed_runtime, ragged.RuntimeClosed),
]


async def _double(x: int) -> int:
    return 2 * x


async def _run_nested() -> None:
    ragged.run(async_fn)


def _enter_g_stw(reason: Any) -> Any:
    async def call() -> None:
        async with ragged.stop_the_world(reason):
            pass

    return call()


def _closed_empty() -> ragged.Chan[int]:
    ch: ragged.Chan[int] = ragged.Chan()
    ch.close()
    return ch


def _wg1() -> ragged.WaitGroup:
    wg = ragged.WaitGroup()
    wg.add(1)
    return wg


@pytest.mark.timeout(60)
@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row: Row) -> None:
    """The call raises exactly ``row.expected``, and the runtime still works afterwards."""
    with ragged.Runtime(procs=2) as rt:
        e = Env(rt=rt, closed_rt=closed_runtime(), cleanup=[])
        try:
            err = run_row(row, rt, e)
        finally:
            for fn in e.cleanup:
                fn()
        assert err is not None, f"{row.id}: nothing was raised, expected {row.expected.__name__}"
        assert type(err) is row.expected, (
            f"{row.id}: raised {type(err).__name__}: {err}, expected exactly {row.expected.__name__}"
        )
        if row.sub is not None:
            assert isinstance(err, BaseExceptionGroup)
            subs = [type(x) for x in err.exceptions]
            assert subs and all(t is row.sub for t in subs), f"{row.id}: group of {subs}, expected {row.sub.__name__}"
        assert str(err), f"{row.id}: the {type(err).__name__} has no message"
        check_still_works(rt, row.id)


def closed_fd() -> int:
    """An fd number nothing has open (a just-closed one may be reused at once by the runtime's own fds)."""
    return max(int(x) for x in os.listdir("/proc/self/fd")) + 500


def test_table_covers_every_public_callable() -> None:
    """Each public function and class of ``ragged`` appears in at least one row id (or is exempt)."""
    exempt = {
        # exception classes and plain data
        "BarrierError",
        "BarrierTimeout",
        "Cancelled",
        "ChanClosed",
        "DeadlineExceeded",
        "Deadlock",
        "IllegalTransition",
        "LockOrderError",
        "NotInGoroutine",
        "NotInPlainThread",
        "RaggedError",
        "RuntimeClosed",
        "RuntimeCrashed",
        "GILEnabledWarning",
        "Case",  # made by recv_case/send_case, covered through select rows
        "P",  # handed to callbacks, never constructed by users
        "Goroutine",  # covered by the g.* rows
        "Context",  # made by the with_* functions
        "background",  # takes no arguments
        "checkpoint",  # takes no arguments; outside a goroutine it is a no-op awaitable by design
        "trace",  # tested in tests/core/test_trace.py
        "GoroutineLogFilter",  # a logging.Filter: no arguments of its own
        "NetError",
        "NetClosed",
        "IOTimeout",
        "NotPollable",
        "FdBusy",
        "TooManyOpenFiles",
        "UnexpectedEOF",
        "net",  # the ragged.net module: its bad inputs are in tests/api/test_net.py
        "Locker",  # a Protocol (a type for annotations), never called
        "Settings",  # built by Runtime(**settings): the Runtime-* rows cover its checks
        "StopTheWorld",  # returned by stop_the_world(): the stw rows cover it
        "warn_if_gil_reenabled",  # its arguments are overrides for tests; it takes no user input
    }
    # A row covers the name its id starts with ("Group-limit-0", "Chan.send-...", "after_func-nan").
    covered = {re.split(r"[-.]", r.id)[0] for r in ROWS}
    missing = [n for n in ragged.__all__ if n not in exempt and n not in covered]
    assert not missing, f"public names without a bad-input row: {missing}"


@pytest.mark.timeout(60)
def test_bad_calls_from_many_threads_at_once_leave_the_runtime_working() -> None:
    """Every thread-side row, from 4 threads at once against one runtime: each raises what it
    raises when made alone (whatever that is: ``test_bad_input`` judges it), and then the runtime
    still works."""
    rows = [r for r in ROWS if r.where == T and not r.id.startswith(("run-", "Runtime-")) and "stw" not in r.id]
    with ragged.Runtime(procs=2) as rt:
        cleanups: list[Callable[[], Any]] = []
        closed = closed_runtime()
        alone = {}
        for row in rows:
            alone[row.id] = type(run_row(row, rt, Env(rt=rt, closed_rt=closed, cleanup=cleanups)))
        together: dict[str, type] = {}

        def worker(k: int) -> None:
            e = Env(rt=rt, closed_rt=closed, cleanup=cleanups)
            for row in rows[k::4]:
                together[row.id] = type(run_row(row, rt, e))

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for fn in cleanups:
            fn()
        assert not any(t.is_alive() for t in threads)
        differ = {k: (alone[k].__name__, together.get(k)) for k in alone if together.get(k) is not alone[k]}
        assert not differ, f"rows that raise something else under concurrency: {differ}"
        check_still_works(rt, "many threads")

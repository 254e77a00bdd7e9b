"""Bad input gets its error: goroutine-only calls outside a goroutine, non-async
functions given to go, bad procs, and any use of a closed runtime."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from conftest import run_threads

import ragged


def test_error_hierarchy() -> None:
    for err in (
        ragged.RuntimeClosed,
        ragged.NotInGoroutine,
        ragged.NotInPlainThread,
        ragged.Cancelled,
        ragged.Deadlock,
        ragged.BarrierError,
        ragged.BarrierTimeout,
        ragged.IllegalTransition,
        ragged.LockOrderError,
        ragged.ChanClosed,
    ):
        assert issubclass(err, ragged.RaggedError)
    assert issubclass(ragged.RaggedError, RuntimeError)
    assert issubclass(ragged.BarrierTimeout, TimeoutError)


# ---------------------------------------------------------------- NotInGoroutine


SYNC_GOROUTINE_ONLY: list[tuple[str, Callable[[], Any]]] = [
    ("go", lambda: ragged.go(_noop)),
    ("current_p", ragged.current_p),
    ("current_goroutine", ragged.current_goroutine),
    ("current_runtime", ragged.current_runtime),
    ("dump", ragged.dump),
    ("metrics", ragged.metrics),
    ("stop_the_world", lambda: ragged.stop_the_world("x")),
]


async def _noop() -> None:
    pass


@pytest.mark.parametrize("name,call", SYNC_GOROUTINE_ONLY, ids=[n for n, _ in SYNC_GOROUTINE_ONLY])
def test_goroutine_only_call_from_plain_thread_raises_not_in_goroutine(name: str, call: Callable[[], Any]) -> None:
    with pytest.raises(ragged.NotInGoroutine) as info:
        call()
    assert "goroutine" in str(info.value)


def _awaitables() -> list[tuple[str, Callable[[], Coroutine[Any, Any, Any]]]]:
    return [
        ("sleep", lambda: ragged.sleep(0.01)),
        ("syscall", lambda: ragged.syscall(len, "abc")),
        ("for_each_p", lambda: ragged.for_each_p(lambda p: None)),
    ]


@pytest.mark.parametrize("name", [n for n, _ in _awaitables()])
def test_goroutine_only_await_outside_goroutine_raises_not_in_goroutine(name: str) -> None:
    make = dict(_awaitables())[name]
    coro = make()
    try:
        with pytest.raises(ragged.NotInGoroutine):
            coro.send(None)
    finally:
        coro.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", [n for n, _ in _awaitables()])
def test_goroutine_only_await_inside_asyncio_raises_not_in_goroutine(name: str) -> None:
    make = dict(_awaitables())[name]

    async def in_asyncio() -> Any:
        return await make()

    with pytest.raises(ragged.NotInGoroutine):
        asyncio.run(in_asyncio())


@pytest.mark.timeout(30)
def test_stop_the_world_async_with_outside_goroutine_raises() -> None:
    async def in_asyncio() -> None:
        with ragged.Runtime(procs=1) as rt:
            async with rt.stop_the_world("wrong place"):
                pass

    with pytest.raises(ragged.NotInGoroutine):
        asyncio.run(in_asyncio())


@pytest.mark.timeout(30)
def test_joining_goroutine_with_await_outside_a_goroutine_raises() -> None:
    gate = threading.Event()

    def wait_gate() -> None:
        gate.wait(10)

    async def slow() -> None:
        await ragged.syscall(wait_gate)

    with ragged.Runtime(procs=1) as rt:
        g = rt.go(slow)

        async def join() -> None:
            await g

        try:
            with pytest.raises(ragged.NotInGoroutine):
                asyncio.run(join())
        finally:
            gate.set()
        g.result(timeout=10)


@pytest.mark.timeout(30)
def test_blocking_plain_thread_calls_inside_goroutine_raise_not_in_plain_thread() -> None:
    async def other() -> int:
        await ragged.sleep(0.05)
        return 1

    async def main() -> list[str]:
        rt = ragged.current_runtime()
        g = ragged.go(other)
        errors = []
        for call in (
            lambda: g.result(),
            lambda: rt.stop_the_world("x").__enter__(),
            lambda: rt.for_each_p(lambda p: None),
            rt.close,
        ):
            try:
                call()
                errors.append("no error")
            except ragged.NotInPlainThread:
                errors.append("NotInPlainThread")
        await g
        return errors

    assert ragged.run(main, procs=2) == ["NotInPlainThread"] * 4


# ---------------------------------------------------------------- go needs an async function


def _plain(x: int = 0) -> int:
    return x


def _generator() -> Any:
    yield 1


async def _async_gen() -> Any:
    yield 1


class _AsyncCallable:
    async def __call__(self) -> str:
        return "callable object"


NOT_ASYNC: list[tuple[str, Any]] = [
    ("plain function", _plain),
    ("lambda", lambda: None),
    ("builtin", print),
    ("generator function", _generator),
    ("async generator function", _async_gen),
    ("None", None),
    ("int", 42),
    ("string", "main"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("what,fn", NOT_ASYNC, ids=[n for n, _ in NOT_ASYNC])
def test_go_with_non_coroutine_function_raises_type_error(what: str, fn: Any) -> None:
    with ragged.Runtime(procs=1) as rt:
        with pytest.raises(TypeError, match="async"):
            rt.go(fn)
        with pytest.raises(TypeError):
            rt.submit(fn)
        assert rt.metrics()["goroutines_created"] == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("what,fn", NOT_ASYNC, ids=[n for n, _ in NOT_ASYNC])
def test_ragged_go_inside_goroutine_with_non_coroutine_function_raises(what: str, fn: Any) -> None:
    async def main() -> str:
        try:
            ragged.go(fn)
        except TypeError:
            return "TypeError"
        return "no error"

    assert ragged.run(main, procs=1) == "TypeError"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("what,fn", NOT_ASYNC, ids=[n for n, _ in NOT_ASYNC])
def test_run_with_non_coroutine_function_raises_type_error(what: str, fn: Any) -> None:
    with pytest.raises(TypeError):
        ragged.run(fn, procs=1)


@pytest.mark.timeout(30)
def test_go_accepts_an_async_callable_object() -> None:
    with ragged.Runtime(procs=1) as rt:
        assert rt.go(_AsyncCallable()).result(timeout=10) == "callable object"


@pytest.mark.timeout(30)
def test_go_with_coroutine_object_and_args_raises_type_error() -> None:
    with ragged.Runtime(procs=1) as rt:
        coro = _noop()
        with pytest.raises(TypeError):
            rt.go(coro, 1)
        assert coro.cr_frame is None, "the rejected coroutine was not closed"


@pytest.mark.timeout(30)
def test_go_with_bad_name_or_labels_raises_type_error() -> None:
    with ragged.Runtime(procs=1) as rt:
        with pytest.raises(TypeError):
            rt.go(_noop, name=3)
        with pytest.raises(TypeError):
            rt.go(_noop, labels=["a"])


@pytest.mark.timeout(30)
def test_syscall_with_bad_function_raises_type_error() -> None:
    async def main() -> list[str]:
        out = []
        for fn in (None, 3, _noop):
            try:
                await ragged.syscall(fn)
                out.append("no error")
            except TypeError:
                out.append("TypeError")
        return out

    assert ragged.run(main, procs=1) == ["TypeError"] * 3


@pytest.mark.timeout(30)
def test_sleep_with_bad_seconds() -> None:
    async def main() -> list[str]:
        out = []
        for seconds in ("1", None, True, -1, float("nan"), 1j):
            try:
                await ragged.sleep(seconds)
                out.append("no error")
            except (TypeError, ValueError) as e:
                out.append(type(e).__name__)
        return out

    # -1 is already expired (as asyncio's sleep(-1)): it returns.
    assert ragged.run(main, procs=1) == ["TypeError", "TypeError", "TypeError", "no error", "ValueError", "TypeError"]


@pytest.mark.timeout(30)
def test_stop_the_world_reason_must_be_str() -> None:
    with ragged.Runtime(procs=1) as rt:
        with pytest.raises(TypeError):
            rt.stop_the_world(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------- procs


BAD_PROCS_TYPE = ["2", 2.0, 1.5, True, False, [2], object()]
BAD_PROCS_VALUE = [0, -1, -100]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", BAD_PROCS_TYPE, ids=repr)
def test_procs_not_an_int_raises_type_error(procs: Any) -> None:
    with pytest.raises(TypeError, match="procs"):
        ragged.Runtime(procs=procs)
    with pytest.raises(TypeError, match="procs"):
        ragged.run(_noop, procs=procs)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", BAD_PROCS_VALUE)
def test_procs_not_positive_raises_value_error(procs: int) -> None:
    with pytest.raises(ValueError, match="procs"):
        ragged.Runtime(procs=procs)
    with pytest.raises(ValueError, match="procs"):
        ragged.run(_noop, procs=procs)


@pytest.mark.timeout(30)
def test_positional_procs_is_validated_too() -> None:
    with pytest.raises(ValueError):
        ragged.Runtime(0)
    with pytest.raises(TypeError):
        ragged.Runtime("4")  # type: ignore[arg-type]


@pytest.mark.timeout(30)
def test_unknown_runtime_setting_raises_type_error() -> None:
    with pytest.raises(TypeError, match="Runtime"):
        ragged.Runtime(procs=1, no_such_setting=1)


# ---------------------------------------------------------------- closed runtime


def _closed_runtime() -> ragged.Runtime:
    rt = ragged.Runtime(procs=2)
    rt.close()
    return rt


CLOSED_USES: list[tuple[str, Callable[[ragged.Runtime], Any]]] = [
    ("go", lambda rt: rt.go(_noop)),
    ("submit", lambda rt: rt.submit(_noop)),
    ("for_each_p", lambda rt: rt.for_each_p(lambda p: None)),
    ("stop_the_world", lambda rt: rt.stop_the_world("closed").__enter__()),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name,use", CLOSED_USES, ids=[n for n, _ in CLOSED_USES])
def test_closed_runtime_raises_runtime_closed(name: str, use: Callable[[ragged.Runtime], Any]) -> None:
    rt = _closed_runtime()
    with pytest.raises(ragged.RuntimeClosed):
        use(rt)
    rt.close()  # still idempotent after a failed use


@pytest.mark.timeout(30)
def test_closed_runtime_go_from_several_threads_raises() -> None:
    rt = _closed_runtime()
    errors = run_threads(lambda _: rt.go(_noop), 4, 10)
    assert len(errors) == 4 and all(isinstance(e, ragged.RuntimeClosed) for e in errors)


@pytest.mark.timeout(30)
def test_closed_runtime_with_block_raises_runtime_closed() -> None:
    rt = _closed_runtime()
    with pytest.raises(ragged.RuntimeClosed):
        with rt.stop_the_world("closed"):
            pass
    with pytest.raises(ragged.RuntimeClosed):
        with rt:
            rt.go(_noop)


@pytest.mark.timeout(30)
def test_runtime_closed_while_goroutine_runs_rejects_its_spawns() -> None:
    """A goroutine still running when its runtime closes cannot start new work."""
    seen: list[str] = []

    async def stubborn() -> None:
        try:
            await ragged.sleep(60)
        except ragged.Cancelled:
            for attempt in (
                lambda: ragged.go(_noop),
                lambda: ragged.current_runtime().submit(_noop),
            ):
                try:
                    attempt()
                    seen.append("no error")
                except ragged.RuntimeClosed:
                    seen.append("RuntimeClosed")

    rt = ragged.Runtime(procs=1)
    with rt:
        g = rt.go(stubborn)
        while g.status != "waiting":
            threading.Event().wait(0.001)
    assert seen == ["RuntimeClosed", "RuntimeClosed"]

"""Goroutine labels: given at spawn or set from inside, validated, shown in
dumps and traces, and added to log records by ``GoroutineLogFilter``."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import ragged


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    """A handler on the ``app`` logger, tagged by GoroutineLogFilter, writing to a buffer."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ragged.GoroutineLogFilter())
    handler.setFormatter(logging.Formatter("%(goroutine_id)s|%(goroutine_name)s|%(goroutine_labels)s|%(message)s"))
    log = logging.getLogger("app")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield out
    finally:
        log.removeHandler(handler)


@pytest.mark.timeout(30)
def test_labels_given_at_spawn_and_set_from_inside() -> None:
    async def child() -> tuple[dict, dict, dict]:
        first = ragged.labels()
        now = ragged.set_labels(stage="parse", attempt=2)
        ragged.set_labels({"http.method": "GET"}, stage="render")
        return first, now, ragged.labels()

    async def main() -> tuple[dict, dict, dict]:
        return await ragged.go(child, name="worker", labels={"request": "r1"})

    first, now, last = ragged.run(main, procs=2)
    assert first == {"request": "r1"}
    assert now == {"request": "r1", "stage": "parse", "attempt": 2}
    assert last == {"request": "r1", "stage": "render", "attempt": 2, "http.method": "GET"}


@pytest.mark.timeout(30)
def test_set_labels_none_removes_and_returned_dicts_are_copies() -> None:
    async def main() -> tuple[dict, dict]:
        ragged.set_labels(a="1", b="2")
        mine = ragged.labels()
        mine["c"] = "sneaky"
        return ragged.set_labels(a=None, missing=None), ragged.labels()

    after, again = ragged.run(main, procs=1)
    assert after == again == {"b": "2"}


@pytest.mark.timeout(30)
def test_set_labels_validates_and_changes_nothing_on_error() -> None:
    async def main() -> list[str]:
        ragged.set_labels(keep="yes")
        errors = []
        for bad_call in (
            lambda: ragged.set_labels({1: "x"}),
            lambda: ragged.set_labels({"": "x"}),
            lambda: ragged.set_labels(ok="fine", obj=object()),
            lambda: ragged.set_labels(["a", "b"]),
        ):
            try:
                bad_call()
            except (TypeError, ValueError) as err:
                errors.append(f"{type(err).__name__}: {err}")
        assert ragged.labels() == {"keep": "yes"}, "a failed call must change nothing"
        return errors

    errors = ragged.run(main, procs=1)
    assert len(errors) == 4
    assert "keys must be str, not int" in errors[0]
    assert errors[1].startswith("ValueError") and "non-empty" in errors[1]
    assert "'obj'" in errors[2] and "not object" in errors[2]
    assert "mapping" in errors[3]


def test_labels_outside_a_goroutine_raise_not_in_goroutine() -> None:
    with pytest.raises(ragged.NotInGoroutine, match="set_labels"):
        ragged.set_labels(a="1")
    with pytest.raises(ragged.NotInGoroutine, match="labels"):
        ragged.labels()


@pytest.mark.timeout(30)
def test_dump_shows_labels_set_from_inside() -> None:
    async def main() -> str:
        ragged.set_labels(tenant="acme")
        return ragged.dump()

    text = ragged.run(main, procs=1)
    assert "labels={'tenant': 'acme'}" in text


@pytest.mark.timeout(30)
def test_log_filter_tags_records_inside_and_outside_goroutines(captured_log: io.StringIO) -> None:
    log = logging.getLogger("app")

    def blocking() -> None:
        log.info("from a syscall")

    async def child() -> None:
        log.info("before")
        ragged.set_labels(step="two")
        log.info("after")
        await ragged.syscall(blocking)

    async def main() -> int:
        g = ragged.go(child, name="child", labels={"req": "r9"})
        await g
        return g.id

    log.info("plain thread")
    gid = ragged.run(main, procs=2)
    lines = captured_log.getvalue().splitlines()
    assert lines == [
        "None|||plain thread",
        f"{gid}|child|req=r9|before",
        f"{gid}|child|req=r9,step=two|after",
        f"{gid}|child|req=r9,step=two|from a syscall",
    ]


def test_log_filter_never_drops_records() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "msg", None, None)
    assert ragged.GoroutineLogFilter().filter(record) is True
    assert (record.goroutine_id, record.goroutine_name, record.goroutine_labels) == (None, "", "")


@pytest.mark.timeout(30)
def test_trace_shows_labels_set_after_the_first_run(tmp_path: Path) -> None:
    """The tracer records labels at a goroutine's first run; set_labels updates them."""

    async def child() -> None:
        ragged.set_labels(phase="late")
        await ragged.gosched()
        await ragged.syscall(time.sleep, 0.001)

    async def main() -> int:
        g = ragged.go(child, name="labelled", labels={"early": "1"})
        await g
        return g.id

    path = tmp_path / "labels.json"
    with ragged.trace(path):
        gid = ragged.run(main, procs=2)
    slices = [
        e
        for e in json.loads(path.read_text())["traceEvents"]
        if e.get("cat") == "goroutine" and e["args"]["goroutine"] == gid
    ]
    assert slices, "the labelled goroutine left no slice"
    assert all(e["args"]["labels"] == {"early": "1", "phase": "late"} for e in slices)
    assert all(e["args"]["name"] == "labelled" for e in slices)

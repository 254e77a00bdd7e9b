"""Goroutine labels: set and read them from inside, and show them in log records.

Labels are a small ``str -> value`` dict on each goroutine (Go's profiler
labels, ``pprof.SetGoroutineLabels``), given at spawn with
``ragged.go(fn, labels={...})`` or set later from inside the goroutine with
:func:`set_labels`.  They are shown in ``ragged.dump()``, in execution traces
(the ``args.labels`` of each goroutine slice) and, through
:class:`GoroutineLogFilter`, in log records.

Only the goroutine itself changes its labels, and it does so by swapping in a
new dict (never by mutating the old one), so a dump or a tracer reading
``g.labels`` from another thread always sees a whole, consistent dict.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ._core import check_label, current_g, tls


def set_labels(mapping: Mapping[str, Any] | None = None, /, **labels: Any) -> dict[str, Any]:
    """Add or change labels of the calling goroutine; return its labels now.

    ``ragged.set_labels(request="r42", stage="parse")`` or
    ``ragged.set_labels({"http.method": "GET"})`` for keys that are not
    Python identifiers; both forms may be combined (keywords win).  A value
    of ``None`` removes that label.  Keys must be non-empty ``str``; values
    ``str``, ``int``, ``float`` or ``bool``.  Nothing changes if any pair is
    invalid.

    The change shows at once in ``ragged.dump()`` and log records; in an
    execution trace each slice carries the labels the goroutine had when the
    slice ended.

    :raises TypeError: for a key that is not a str, a value of another type, or a
        ``mapping`` that is not a mapping.
    :raises ValueError: for an empty key.
    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine (a goroutine sets only its own labels).
    """
    g = current_g("ragged.set_labels()")
    if mapping is not None and not isinstance(mapping, Mapping):
        raise TypeError(f"ragged.set_labels() takes a mapping and/or keywords, not {type(mapping).__name__}")
    changes = {**(mapping or {}), **labels}
    for key, value in changes.items():
        check_label(key, value)
    new = {**g.labels, **changes}
    for key, value in changes.items():
        if value is None:
            del new[key]
    g.labels = new  # a new dict: tracers keep references to the old one
    return dict(new)


def labels() -> dict[str, Any]:
    """A copy of the calling goroutine's labels.

    :raises NotInGoroutine: outside a goroutine.
    :Called from: inside a goroutine.
    """
    return dict(current_g("ragged.labels()").labels)


def format_labels(labels: Mapping[str, Any]) -> str:
    """``k=v,k2=v2`` in insertion order: how log records and summaries show labels."""
    return ",".join(f"{k}={v}" for k, v in labels.items())


class GoroutineLogFilter(logging.Filter):
    """A ``logging.Filter`` that tags each record with the goroutine that logged it.

    Adds ``record.goroutine_id`` (``int``, or ``None`` outside goroutines),
    ``record.goroutine_name`` and ``record.goroutine_labels`` (``"k=v,k2=v2"``;
    both ``""`` outside goroutines), so a format string such as
    ``"%(goroutine_id)s %(goroutine_name)s [%(goroutine_labels)s] %(message)s"``
    works for every record.  A record logged from a blocking call inside
    ``ragged.syscall`` belongs to the goroutine that made the call.  Never
    drops a record.

    Attach it to the *handler* (``handler.addFilter(ragged.GoroutineLogFilter())``)
    so that records from every logger that reach the handler are tagged; a
    filter on a logger only sees records logged on that very logger.

    :raises: nothing.
    :Called from: anywhere; logging calls it on the logging thread.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Tag ``record`` with the calling goroutine (empty outside goroutines); keep it.

        :raises: nothing.
        :Called from: anywhere (logging calls it).
        """
        m = getattr(tls, "m", None)
        g = m.curg if m is not None else None
        if g is None:
            record.goroutine_id = None
            record.goroutine_name = ""
            record.goroutine_labels = ""
        else:
            record.goroutine_id = g.id
            record.goroutine_name = g.name
            record.goroutine_labels = format_labels(g.labels)
        return True


__all__ = ["GoroutineLogFilter", "format_labels", "labels", "set_labels"]

"""Go's ``sync/atomic`` integer: :class:`AtomicInt`, a lock-free signed 64-bit word.

Each ``AtomicInt`` owns one 8-byte-aligned ``int64`` cell and changes it only
through sequentially consistent patomic operations, bound once from the op
table of the ``atomics`` package (``_core.bind_ops``, the binding the
scheduler's P words use; the package version is pinned and
``tests/api/test_atomic.py`` checks the binding against the package's public
API).  No lock is taken and nothing relies on the GIL: goroutines on
different Ps and plain threads may use one ``AtomicInt`` at the same time on
both builds.  If the op table cannot be bound, the slower public ``atomics``
API is used instead (same semantics).

Values are Go's ``int64``: every argument must be an int in
``[-2**63, 2**63 - 1]`` (``OverflowError`` otherwise, before anything
changes); :meth:`AtomicInt.add` wraps around on overflow, as Go's does.
"""

from __future__ import annotations

import ctypes
import operator
from typing import Any

import atomics

from ._core import SEQ_CST, bind_ops

__all__ = ["AtomicInt", "INT64_MAX", "INT64_MIN"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_WRAP = 2**64

_I64 = ctypes.c_int64
_addressof = ctypes.addressof
_OPS = bind_ops(_I64, True, ("load", "store", "cas", "fetch_add", "exchange"))
_LOAD, _STORE, _CAS, _FETCH_ADD, _XCHG = _OPS if _OPS is not None else (None,) * 5

# patomic only reads the desired value and the addend: one constant cell per
# small value serves every thread (as the P words do).  Outputs are fresh per call.
_SMALL = range(-16, 17)
_CONST = {v: _I64(v) for v in _SMALL}
_CONST_ADDR = {v: _addressof(c) for v, c in _CONST.items()}


def _int64(value: Any, what: str) -> int:
    """``value`` as an int in the int64 range, else TypeError / OverflowError naming ``what``."""
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(f"{what} takes an int, not {type(value).__name__} {value!r}")
    v = operator.index(value)
    if not INT64_MIN <= v <= INT64_MAX:
        raise OverflowError(
            f"{what}: {v} is out of range: an AtomicInt holds a signed 64-bit integer "
            "(-2**63 to 2**63-1, as Go's atomic.Int64)"
        )
    return v


class AtomicInt:
    """A signed 64-bit integer changed atomically (Go's ``atomic.Int64``).

    ``load()``, ``store(v)``, ``add(delta)`` (returns the new value),
    ``swap(v)`` (returns the old value) and ``compare_and_swap(old, new)``
    (returns whether it swapped).  Every operation is one lock-free,
    sequentially consistent atomic instruction: use it from goroutines on any
    P and from plain threads alike, on the GIL and the free-threaded build.
    No operation is a safe point (none awaits).

    The range is Go's ``int64``, ``-2**63`` to ``2**63 - 1``: a value or delta
    outside it raises ``OverflowError`` and changes nothing; ``add`` past
    either end wraps around, as in Go (Python ints never overflow; an
    ``AtomicInt`` does).  ``bool`` and ``float`` are refused with
    ``TypeError``; other integer types with ``__index__`` (numpy's) are taken.

    What it is for: counters, flags and ids shared by goroutines, plain
    threads and the callbacks that must never block (``for_each_p``
    callbacks, timer and done callbacks), with no lock to wait on.  What it
    costs: each operation is one foreign call, about 0.5-1µs in CPython,
    more than an uncontended ``threading.Lock`` around an int; where a lock
    is allowed and contention is low, the lock can be faster.

    :raises TypeError: if ``value`` is not an int.
    :raises OverflowError: if ``value`` is outside the int64 range.
    :Called from: anywhere; every method may be called from any goroutine or thread.
    """

    __slots__ = ("_cell", "_addr", "_pub")

    def __init__(self, value: int = 0) -> None:
        v = value if type(value) is int and INT64_MIN <= value <= INT64_MAX else _int64(value, "AtomicInt()")
        self._cell = _I64(v)  # ctypes aligns an int64 to 8 bytes: lock-free on every platform we run on
        self._addr = _addressof(self._cell)
        self._pub: Any = None
        if _OPS is None:  # pragma: no cover - only when the op table cannot be bound
            self._pub = atomics.atomic(width=8, atype=atomics.INT)  # the value lives there, not in _cell
            self._pub.store(v)

    def load(self) -> int:
        """The value now.

        :raises: nothing.
        :Called from: anywhere.
        """
        if _OPS is None:  # pragma: no cover
            return int(self._pub.load())
        out = _I64()
        _LOAD(self._addr, SEQ_CST, _addressof(out))
        return out.value

    def store(self, value: int) -> None:
        """Set the value to ``value``.

        :raises TypeError: if ``value`` is not an int.
        :raises OverflowError: if ``value`` is outside the int64 range (nothing changes).
        :Called from: anywhere.
        """
        if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
            value = _int64(value, "AtomicInt.store()")
        if _OPS is None:  # pragma: no cover
            self._pub.store(value)
            return
        if value in _CONST_ADDR:
            _STORE(self._addr, _CONST_ADDR[value], SEQ_CST)
        else:
            cell = _I64(value)  # bound to a name: it must outlive the call
            _STORE(self._addr, _addressof(cell), SEQ_CST)

    def add(self, delta: int) -> int:
        """Add ``delta`` (may be negative); return the new value.

        Wraps around past either end of the int64 range, as Go's ``Add`` does.

        :raises TypeError: if ``delta`` is not an int.
        :raises OverflowError: if ``delta`` itself is outside the int64 range (nothing changes).
        :Called from: anywhere.
        """
        if type(delta) is not int or not INT64_MIN <= delta <= INT64_MAX:
            delta = _int64(delta, "AtomicInt.add()")
        if _OPS is None:  # pragma: no cover
            old = int(self._pub.fetch_add(delta))
        else:
            out = _I64()
            if delta in _CONST_ADDR:
                _FETCH_ADD(self._addr, _CONST_ADDR[delta], SEQ_CST, _addressof(out))
            else:
                arg = _I64(delta)  # bound to a name: it must outlive the call
                _FETCH_ADD(self._addr, _addressof(arg), SEQ_CST, _addressof(out))
            old = out.value
        new = old + delta
        if new > INT64_MAX:
            new -= _WRAP
        elif new < INT64_MIN:
            new += _WRAP
        return new

    def swap(self, value: int) -> int:
        """Set the value to ``value``; return the value it replaced.

        :raises TypeError: if ``value`` is not an int.
        :raises OverflowError: if ``value`` is outside the int64 range (nothing changes).
        :Called from: anywhere.
        """
        if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
            value = _int64(value, "AtomicInt.swap()")
        if _OPS is None:  # pragma: no cover
            return int(self._pub.exchange(value))
        out = _I64()
        cell = _I64(value)  # bound to a name: it must outlive the call
        _XCHG(self._addr, _addressof(cell), SEQ_CST, _addressof(out))
        return out.value

    def compare_and_swap(self, old: int, new: int) -> bool:
        """If the value is ``old``, set it to ``new`` and return True; else return False.

        Of several racing ``compare_and_swap(x, ...)`` calls on the value ``x``,
        exactly one wins.

        :raises TypeError: if ``old`` or ``new`` is not an int.
        :raises OverflowError: if either is outside the int64 range (nothing changes).
        :Called from: anywhere.
        """
        if type(old) is not int or not INT64_MIN <= old <= INT64_MAX:
            old = _int64(old, "AtomicInt.compare_and_swap()")
        if type(new) is not int or not INT64_MIN <= new <= INT64_MAX:
            new = _int64(new, "AtomicInt.compare_and_swap()")
        if _OPS is None:  # pragma: no cover
            return bool(self._pub.cmpxchg_strong(old, new).success)
        expected = _I64(old)  # written on failure: fresh per call
        if new in _CONST_ADDR:
            return _CAS(self._addr, _addressof(expected), _CONST_ADDR[new], SEQ_CST, SEQ_CST) != 0
        desired = _I64(new)  # bound to a name: it must outlive the call
        return _CAS(self._addr, _addressof(expected), _addressof(desired), SEQ_CST, SEQ_CST) != 0

    def __repr__(self) -> str:
        return f"AtomicInt({self.load()})"

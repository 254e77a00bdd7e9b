"""Atomic 32-bit words on top of the ``atomics`` package, and the op-table binding.

A P keeps its ``status`` and ``runSafePointFn`` in an :class:`AtomicWords`
buffer.  Two ways to read the same memory:

* ``load`` / ``store`` / ``cas``: sequentially consistent atomic operations.
* ``plain``: a ``memoryview`` over the buffer, for the cheap "is anything
  pending?" check (Go does a plain load first and CASes only when it looks
  set).  A plain read may be stale; it is only ever a hint, and every decision
  that matters is taken by a CAS.

Speed.  The public ``atomics`` methods cost 5-17µs per call, almost all of it
argument checking and buffer wrapping in Python.  We bind once to the compiled
patomic functions that the package itself calls (its op table) and call them
through ``ctypes.PYFUNCTYPE``, which keeps the GIL across the call: a CAS costs
well under a microsecond.  The op-table layout is private to ``atomics``, so the
version is pinned in pyproject.toml and ``tests/core/test_atomics.py`` checks the
binding against the public methods.  If the layout ever differs we fall back
to the public methods (slow but correct) and say so once in the log.
:func:`bind_ops` is that binding for any integer width; the user layer's
64-bit ``AtomicInt`` uses it too.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

import atomics

__all__ = ["AtomicWords", "BINDING", "SEQ_CST", "bind_ops"]

_log = logging.getLogger("ragged")

SEQ_CST = 5  # patomic's memory_order_seq_cst
_U32 = ctypes.c_uint32
_addressof = ctypes.addressof

# Desired values are only read by patomic, so one constant cell per small value
# serves every thread.  Expected values are written on failure: fresh per call.
_CONST = [_U32(v) for v in range(16)]
_CONST_ADDR = [_addressof(c) for c in _CONST]


_MASK = 0xFFFFFFFF


# The C signature of each patomic operation used here (``obj`` and values by address).
_VP, _CI = ctypes.c_void_p, ctypes.c_int
_SIGNATURES: dict[str, tuple[Any, ...]] = {
    "load": (None, _VP, _CI, _VP),  # (obj, order, ret)
    "store": (None, _VP, _VP, _CI),  # (obj, desired, order)
    "cas": (_CI, _VP, _VP, _VP, _CI, _CI),  # (obj, expected, desired, succ, fail) -> ok
    "fetch_add": (None, _VP, _VP, _CI, _VP),  # (obj, arg, order, ret)
    "exchange": (None, _VP, _VP, _CI, _VP),  # (obj, desired, order, ret)
}
_OP_NAMES = {
    "load": "LOAD",
    "store": "STORE",
    "cas": "CMPXCHG_STRONG",
    "fetch_add": "FETCH_ADD",
    "exchange": "EXCHANGE",
}


def bind_ops(ctype: Any, signed: bool, names: tuple[str, ...]) -> tuple[Any, ...] | None:
    """The compiled patomic functions ``names`` for a ``ctype``-sized integer, or None.

    ``names`` are keys of ``_SIGNATURES``; the result is in the same order,
    each a ``ctypes.PYFUNCTYPE`` function (it keeps the GIL across the call,
    which costs nothing: the operation itself is a single instruction).
    ``signed`` picks the package's signed or unsigned arithmetic table.
    Returns None (and logs once) if the op table cannot be read: callers then
    use the public ``atomics`` API.
    """
    try:
        from atomics._impl.enums import OpType

        scratch = (ctype * 1)()
        atype = atomics.INT if signed else atomics.UINT
        with atomics.atomicview(buffer=memoryview(scratch).cast("B"), atype=atype) as view:
            core = view._core
            fps = [core.get_op_func(getattr(OpType, _OP_NAMES[n])) for n in names]
        if any(fp is None for fp in fps):
            return None
        addr = [a for a in (ctypes.cast(fp, ctypes.c_void_p).value for fp in fps) if a]
        if len(addr) != len(fps):  # a null function pointer
            return None
        return tuple(ctypes.PYFUNCTYPE(*_SIGNATURES[n])(a) for n, a in zip(names, addr, strict=True))
    except Exception:  # noqa: BLE001  # pragma: no cover - depends on the installed atomics
        _log.warning("ragged: could not bind to atomics' op table; using its public API (slow)")
        return None


_OPS = bind_ops(_U32, False, ("load", "store", "cas", "fetch_add"))
BINDING = "optable" if _OPS is not None else "public"
_LOAD, _STORE, _CAS, _FETCH_ADD = _OPS if _OPS is not None else (None, None, None, None)


class AtomicWords:
    """``n`` 32-bit unsigned words, 64-byte aligned, each usable atomically.

    Methods are safe from any thread without holding any lock and do not
    depend on the GIL for atomicity.
    """

    __slots__ = ("_n", "_raw", "_addrs", "plain", "_views", "_ctxs")

    def __init__(self, n: int) -> None:
        if n <= 0:
            raise ValueError("AtomicWords needs at least one word")
        self._n = n
        # Over-allocate so the words can start on a cache-line boundary.
        self._raw = (ctypes.c_char * (4 * n + 64))()
        start = _addressof(self._raw)
        offset = (-start) % 64
        self._addrs = [start + offset + 4 * i for i in range(n)]
        self.plain = memoryview(self._raw).cast("B")[offset : offset + 4 * n].cast("I")
        self._views: list[Any] = []  # the public-API fallback only
        self._ctxs: list[Any] = []
        if _OPS is None:  # pragma: no cover - fallback path
            self._ctxs = [
                atomics.atomicview(buffer=self.plain.cast("B")[4 * i : 4 * i + 4], atype=atomics.UINT) for i in range(n)
            ]
            self._views = [c.__enter__() for c in self._ctxs]

    def __len__(self) -> int:
        return self._n

    def load(self, i: int) -> int:
        """Atomically load word ``i``."""
        if _OPS is None:  # pragma: no cover
            return self._views[i].load()
        out = _U32()
        _LOAD(self._addrs[i], SEQ_CST, _addressof(out))
        return out.value

    def store(self, i: int, value: int) -> None:
        """Atomically store ``value`` into word ``i``."""
        if _OPS is None:  # pragma: no cover
            self._views[i].store(value)
            return
        if 0 <= value < 16:
            _STORE(self._addrs[i], _CONST_ADDR[value], SEQ_CST)
        else:
            cell = _U32(value)  # bound to a name: it must outlive the call
            _STORE(self._addrs[i], _addressof(cell), SEQ_CST)

    def cas(self, i: int, old: int, new: int) -> bool:
        """Atomically replace word ``i`` with ``new`` if it equals ``old``.

        Returns True when the swap happened.  Exactly one of several racing
        CASes from ``old`` wins.
        """
        if _OPS is None:  # pragma: no cover
            return bool(self._views[i].cmpxchg_strong(old, new))
        expected = _U32(old)
        if 0 <= new < 16:
            return _CAS(self._addrs[i], _addressof(expected), _CONST_ADDR[new], SEQ_CST, SEQ_CST) != 0
        desired = _U32(new)  # bound to a name: it must outlive the call
        return _CAS(self._addrs[i], _addressof(expected), _addressof(desired), SEQ_CST, SEQ_CST) != 0

    def add(self, i: int, delta: int) -> int:
        """Atomically add ``delta`` (may be negative) to word ``i``; return the new value.

        Arithmetic wraps modulo 2**32, as the word is unsigned.
        """
        if _OPS is None:  # pragma: no cover
            return (self._views[i].fetch_add(delta & _MASK) + delta) & _MASK
        arg = _U32(delta & _MASK)  # bound to a name: it must outlive the call
        old = _U32()
        _FETCH_ADD(self._addrs[i], _addressof(arg), SEQ_CST, _addressof(old))
        return (old.value + delta) & _MASK

    def __repr__(self) -> str:
        return f"AtomicWords({list(self.plain)})"

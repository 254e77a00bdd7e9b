"""Argument types shared by the bench command lines (``python -m ragged.bench``, ``ragged.bench.soak``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

# What ``--peers`` can run, in order: the peer sections (``peer_cases``), then issue 12's two cases.
# Here rather than in ``peers`` so that ``--help`` does not import the peer cases.
PEER_PARTS = ("spawn", "switch", "pingpong", "syscall", "checkpoint", "barrier", "scaling", "mutator")


def positive(kind: type) -> Callable[[str], Any]:
    """An argparse ``type=``: ``kind(text)`` if it is > 0, else a usage error naming the text."""

    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
        return v

    return parse

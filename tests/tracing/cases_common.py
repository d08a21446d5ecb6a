"""Shared inputs and the case registry for the NumPy-function tests.

``case(covers, name, fn, *args)`` records that ``fn(*args)`` exercises the
functions in ``covers``; ``test_functions`` runs every case against NumPy and
checks that every handled function is covered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

rng = np.random.default_rng(7)
A = rng.normal(size=(3, 4))
B = rng.normal(size=(4, 5))
C = rng.normal(size=(2, 3, 4))
M = rng.normal(size=(4, 4))
V = rng.normal(size=4)
A32 = A.astype(np.float32)
I32 = rng.integers(-5, 6, size=(3, 4)).astype(np.int32)
I64 = rng.integers(-5, 6, size=(3, 4))
BOOL = A > 0
WITH_NAN = np.where(A > 1.0, np.nan, A)
IDX = np.array([2, 0, -1, 1])


@dataclass
class Case:
    covers: tuple[Any, ...]
    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]


CASES: list[Case] = []


def case(covers: Any, name: str, fn: Callable[..., Any], *args: Any) -> None:
    covers = covers if isinstance(covers, tuple) else (covers,)
    CASES.append(Case(covers, name, fn, args))

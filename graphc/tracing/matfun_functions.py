"""scipy.linalg's ``expm`` and ``lu`` on traced arrays, batched over the
leading dims as SciPy does. ``expm`` is one IR op; ``lu`` unpacks the packed
factor of the ``lu`` op (the one ``lu_factor`` uses) into P, L and U, so its
gradient is that op's; a rectangular matrix is first padded to a square one.

>>> import numpy as np, scipy.linalg, graphc as gc
>>> gc.jit(scipy.linalg.expm, backend="numpy")(np.zeros((2, 2)))
array([[1., 0.],
       [0., 1.]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ir import OpTypeError

from .decomp_functions import _matrices, _op
from .dispatch import as_tracer, error
from .ops import cast
from .scipy_hooks import intercept


@intercept("scipy.linalg", "expm")
def expm(A: Any) -> Any:
    a = as_tracer(A)
    dtype = np.dtype(a.dtype)
    if a.size == 1 and a.ndim < 2:  # SciPy's scalar case
        return np.exp(np.reshape(a if dtype.kind == "f" else cast(a, np.float64), (1, 1)))
    if a.ndim < 2:
        raise error(
            OpTypeError, "scipy.linalg.expm: the input array must be at least two-dimensional"
        )
    if dtype.kind == "f" and dtype.itemsize < 4:  # SciPy computes float16 in float32
        a = cast(a, np.float32)
    return _op("expm", _matrices(a, "scipy.linalg.expm"))


@intercept("scipy.linalg", "lu")
def lu(
    a: Any, permute_l: bool = False, overwrite_a: bool = False, check_finite: bool = True,
    p_indices: bool = False,
) -> Any:  # fmt: skip
    x = as_tracer(a)
    if x.ndim < 2:
        raise error(OpTypeError, "scipy.linalg.lu: the input array must be two-dimensional")
    if np.dtype(x.dtype).kind != "f":
        x = cast(x, np.float64)
    m, n = x.shape[-2:]
    if m == n:
        packed, perm = _packed_lu(x)
        lower = np.tril(packed, -1) + np.eye(n, dtype=x.dtype)
        upper = np.triu(packed)
    elif m > n:
        lower, upper, perm = _tall_lu(x)
    else:
        lower, upper, perm = _wide_lu(x)
    # x[perm] = L U, so x = P L U with P[j, i] = (perm[i] == j).
    p = (perm[..., None, :] == np.arange(m)[:, None]).astype(x.dtype)
    if permute_l:
        return np.matmul(p, lower), upper
    if p_indices:
        return np.argsort(perm, axis=-1).astype(np.int32), lower, upper
    return p, lower, upper


def _packed_lu(x: Any) -> tuple[Any, Any]:
    packed, _, perm = _op("lu", _matrices(x, "scipy.linalg.lu"))
    return packed, perm


# A rectangular matrix is factored as a square one padded so that the padding
# changes no pivot and leaves the factors nonsingular (so the square op's
# gradient is finite and, restricted to the real part, exact).


def _tall_lu(x: Any) -> tuple[Any, Any, Any]:
    m, n = x.shape[-2:]
    lead = x.shape[:-2]
    # Zero columns first, only to learn the row order; then unit columns on
    # the rows that end up below the first n: the trailing block is exactly I.
    _, perm = _packed_lu(np.concatenate([x, np.zeros(lead + (m, m - n), x.dtype)], axis=-1))
    rows = perm[..., n:, None] == np.arange(m)  # [..., m - n, m]: row perm[n + j] is hot
    unit = np.matrix_transpose(rows.astype(x.dtype))
    packed, perm = _packed_lu(np.concatenate([x, unit], axis=-1))
    lower = np.tril(packed[..., :, :n], -1) + np.eye(m, n, dtype=x.dtype)
    return lower, np.triu(packed[..., :n, :n]), perm


def _wide_lu(x: Any) -> tuple[Any, Any, Any]:
    m, n = x.shape[-2:]
    lead = x.shape[:-2]
    # Rows [0, I] below: zero where pivots are chosen, so they are never
    # picked and leave multipliers of 0; the trailing block is exactly I.
    pad = np.broadcast_to(np.eye(n - m, n, k=m, dtype=x.dtype), lead + (n - m, n))
    packed, perm = _packed_lu(np.concatenate([x, pad], axis=-2))
    lower = np.tril(packed[..., :m, :m], -1) + np.eye(m, dtype=x.dtype)
    return lower, np.triu(packed[..., :m, :]), perm[..., :m]

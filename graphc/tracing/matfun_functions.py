"""scipy.linalg's ``expm`` and ``lu`` on traced arrays, batched over the
leading dims as SciPy does. ``expm`` is one IR op; ``lu`` unpacks the packed
factor of the ``lu`` op (the one ``lu_factor`` uses) into P, L and U, so its
gradient is that op's.

>>> import numpy as np, scipy.linalg, graphc as gc
>>> gc.jit(scipy.linalg.expm, backend="numpy")(np.zeros((2, 2)))
array([[1., 0.],
       [0., 1.]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.ir import OpTypeError, UnsupportedError

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
    if x.ndim >= 2 and x.shape[-1] != x.shape[-2]:
        raise error(
            UnsupportedError,
            f"scipy.linalg.lu of a non-square matrix (shape {x.shape}) is not supported "
            "on traced arrays",
            hint="pad the matrix to a square one, or factor a square block",
        )
    x = _matrices(x, "scipy.linalg.lu")
    packed, _, perm = _op("lu", x)
    n = x.shape[-1]
    lower = np.tril(packed, -1) + np.eye(n, dtype=x.dtype)
    upper = np.triu(packed)
    # x[perm] = L U, so x = P L U with P[j, i] = (perm[i] == j).
    p = (perm[..., None, :] == np.arange(n)[:, None]).astype(x.dtype)
    if permute_l:
        return np.matmul(p, lower), upper
    if p_indices:
        return np.argsort(perm, axis=-1).astype(np.int32), lower, upper
    return p, lower, upper

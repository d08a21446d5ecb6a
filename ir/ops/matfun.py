"""Matrix functions: ``expm``, the matrix exponential (``scipy.linalg.expm``).

``expm(a)`` maps a stack of square matrices ``[..., n, n]`` to their
exponentials. The reference is SciPy's own (Al-Mohy and Higham's
scaling-and-squaring Padé method, with exact shortcuts for diagonal and
triangular matrices); backends without it decompose the op into products,
one solve and a loop of squarings (see the LLVM backend's ``matfun``).

VJP: the adjoint of the Fréchet derivative ``L(A, E)`` of the exponential is
``L(A^T, G)`` for the cotangent ``G``, and ``L(X, G)`` is the upper-right
block of ``expm([[X, G], [0, X]])`` (Mathias 1996; Higham, *Functions of
Matrices*, 3.2). So the rule is one ``expm`` of twice the size: it is again
ordinary IR, and differentiating it gives the second derivative. ``L`` is
linear in ``G``, so ``G`` is scaled to unit 1-norm first: a cotangent much
larger than ``a`` would otherwise set the number of squarings and cost
accuracy.

>>> import numpy as np
>>> from graphc.ir import GraphBuilder, f64, interpret
>>> b = GraphBuilder("f"); a = b.input(f64[2, 2], "a")
>>> interpret(b.build([b.expm(a)]), np.array([[0.0, 1.0], [0.0, 0.0]]))[0]
array([[1., 1.],
       [0., 1.]])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from ..core import Literal, TensorType
from .factor import _square, mT
from .registry import OpDef, register
from .vjp_util import zeros


def _expm_rule(a: TensorType) -> TensorType:
    _square(a, "expm")
    return a


def _expm_ref(a: np.ndarray) -> np.ndarray:
    if a.size == 0:
        return np.empty_like(a)
    return np.asarray(scipy.linalg.expm(a), a.dtype)


def one_norm(b: Any, a: Any) -> Any:
    """The matrix 1-norm (largest column sum of absolute values) of each
    matrix of the stack ``a``, shape ``a.shape[:-2]``.

    >>> from graphc.ir import GraphBuilder, f64, interpret
    >>> b = GraphBuilder("f"); a = b.input(f64[2, 2], "a")
    >>> interpret(b.build([one_norm(b, a)]), np.array([[1.0, -4.0], [2.0, 3.0]]))[0]
    array(7.)
    """
    nd = a.type.ndim
    columns = b.reduce_sum(b.abs(a), axes=(nd - 2,))
    return b.reduce_max(columns, axes=(nd - 2,))


def _expm_vjp(b: Any, ct: Any, out: Any, a: Any) -> tuple[Any]:
    nd, n = a.type.ndim, a.type.shape[-1]
    batch = tuple(range(nd - 2))
    norm = b.stop_gradient(one_norm(b, ct))
    scale = b.select(b.gt(norm, Literal(0.0, a.type.dtype)), norm, Literal(1.0, a.type.dtype))
    scale = b.broadcast_in_dim(scale, shape=a.type.shape, broadcast_dimensions=batch)
    a_t = mT(b, a)
    top = b.concatenate(a_t, b.div(ct, scale), axis=nd - 1)
    bottom = b.concatenate(zeros(b, a.type), a_t, axis=nd - 1)
    big = b.expm(b.concatenate(top, bottom, axis=nd - 2))
    start = (0,) * (nd - 1) + (n,)
    block = b.slice(big, start=start, limit=a.type.shape[:-1] + (2 * n,), stride=(1,) * nd)
    return (b.mul(block, scale),)


register(
    OpDef(
        "expm", ("a",), (), _expm_rule, _expm_ref, _expm_vjp, frozenset({"pure"}),
        doc="matrix exponential of each matrix of a stack (scipy.linalg.expm)",
    )
)  # fmt: skip

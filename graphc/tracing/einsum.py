"""np.einsum and np.tensordot, lowered to diagonal slices, reduce_sum,
transpose, reshape, mul and matmul.

Operands are contracted pairwise from left to right. Before each step every
label no later operand or the output needs is summed away, so a pair is
always a batched matrix product: batch labels (shared and kept), contracted
labels (shared, not kept) and each side's free labels.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from graphc.ir import OpTypeError

from .array import TracedArray
from .dispatch import error, implements, no_out, static_ints
from .ops import cast, lift, to_dtype, trace_of

Labels = list[Hashable]


def _letter(i: Any) -> str:
    if i is Ellipsis:
        return "..."
    i = int(i)
    if not 0 <= i < 52:
        raise error(OpTypeError, f"einsum: subscript {i} is not in [0, 52)")
    return chr(ord("A") + i) if i < 26 else chr(ord("a") + i - 26)


def _interleaved(args: Sequence[Any]) -> tuple[str, list[Any]]:
    operands = list(args[0::2])
    subs = [list(s) for s in args[1::2]]
    out = None
    if len(subs) < len(operands):
        out = operands.pop()
    terms = ["".join(_letter(i) for i in s) for s in subs]
    spec = ",".join(terms)
    if out is not None:
        spec += "->" + "".join(_letter(i) for i in out)
    return spec, operands


def _split_term(term: str, ndim: int, where: str) -> Labels:
    if term.count("...") > 1 or term.replace("...", "").count(".") > 0:
        raise error(OpTypeError, f"einsum: invalid ellipsis in '{where}'")
    for ch in term.replace("...", ""):
        if not ch.isalpha():
            raise error(OpTypeError, f"einsum: invalid subscript '{ch}' in '{where}'")
    if "..." not in term:
        if len(term) != ndim:
            raise error(
                OpTypeError,
                f"einsum: operand has {ndim} dimensions but subscripts '{term}' name {len(term)}",
            )
        return list(term)
    head, tail = term.split("...")
    extra = ndim - len(head) - len(tail)
    if extra < 0:
        raise error(OpTypeError, f"einsum: operand has too few dimensions for '{term}'")
    # ellipsis axes are broadcast right-aligned, like NumPy broadcasting
    return list(head) + [("...", -extra + i) for i in range(extra)] + list(tail)


def parse(spec: str, ndims: Sequence[int]) -> tuple[list[Labels], Labels]:
    """Labels per operand and for the output. Ellipsis axes get labels
    ``("...", -k)`` counted from the right, so they line up across operands."""
    spec = spec.replace(" ", "")
    lhs, arrow, rhs = spec.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise error(OpTypeError, f"einsum: {len(terms)} subscript terms for {len(ndims)} operands")
    labels = [_split_term(t, n, spec) for t, n in zip(terms, ndims)]
    ellipsis = sorted({lb for ls in labels for lb in ls if isinstance(lb, tuple)}, key=_pos)
    if not arrow:
        letters = [lb for ls in labels for lb in ls if isinstance(lb, str)]
        return labels, list(ellipsis) + sorted(c for c in set(letters) if letters.count(c) == 1)
    if "..." in rhs:
        head, _, tail = rhs.partition("...")
        out: Labels = list(head) + list(ellipsis) + list(tail)
    elif ellipsis:
        raise error(
            OpTypeError,
            "einsum: output has more dimensions than subscripts given, but no '...' in the output",
        )
    else:
        out = list(rhs)
    known = {lb for ls in labels for lb in ls}
    for lb in out:
        if isinstance(lb, str) and (not lb.isalpha() or lb not in known):
            raise error(
                OpTypeError, f"einsum: output subscript '{lb}' does not appear in the input"
            )
    if len(set(out)) != len(out):
        raise error(OpTypeError, f"einsum: output subscripts in '{rhs}' repeat")
    return labels, out


def _pos(lb: Any) -> int:
    return int(lb[1])


def _sizes(operands: Sequence[TracedArray], labels: Sequence[Labels]) -> dict[Hashable, int]:
    sizes: dict[Hashable, int] = {}
    for x, ls in zip(operands, labels):
        for lb, n in zip(ls, x.shape):
            seen = sizes.get(lb, 1)
            if n != seen and 1 not in (n, seen):
                raise error(
                    OpTypeError,
                    f"einsum: operands could not be broadcast together: subscript {lb!r} has "
                    f"sizes {seen} and {n}",
                )
            sizes[lb] = max(seen, n) if 0 not in (n, seen) else 0
    return sizes


def _take_diagonals(x: TracedArray, ls: Labels) -> tuple[TracedArray, Labels]:
    ls = list(ls)
    while len(set(ls)) != len(ls):
        lb = next(lb for lb in ls if ls.count(lb) > 1)
        i = ls.index(lb)
        j = ls.index(lb, i + 1)
        if x.shape[i] != x.shape[j]:
            raise error(
                OpTypeError,
                f"einsum: repeated subscript {lb!r} has different sizes {x.shape[i]} and "
                f"{x.shape[j]} in one operand",
            )
        x = np.diagonal(x, 0, i, j)
        ls = [v for k, v in enumerate(ls) if k not in (i, j)] + [lb]
    return x, ls


def _sum_out(x: TracedArray, ls: Labels, keep: set[Hashable]) -> tuple[TracedArray, Labels]:
    axes = tuple(i for i, lb in enumerate(ls) if lb not in keep)
    if not axes:
        return x, ls
    dtype = x.dtype
    x = np.sum(x, axis=axes)
    return cast(x, dtype), [lb for lb in ls if lb in keep]


def _arrange(x: TracedArray, ls: Labels, order: Labels, sizes: dict[Hashable, int]) -> Any:
    """``x`` transposed to ``order`` and broadcast to the full label sizes."""
    x = np.transpose(x, [ls.index(lb) for lb in order])
    return np.broadcast_to(x, tuple(sizes[lb] for lb in order))


def _contract_pair(
    a: TracedArray,
    la: Labels,
    b: TracedArray,
    lb_: Labels,
    keep: set[Hashable],
    sizes: dict[Hashable, int],
) -> tuple[TracedArray, Labels]:
    shared = [lb for lb in la if lb in lb_]
    batch = [lb for lb in shared if lb in keep]
    contracted = [lb for lb in shared if lb not in keep]
    free_a = [lb for lb in la if lb not in shared]
    free_b = [lb for lb in lb_ if lb not in shared]
    dims = [sizes[lb] for lb in batch]
    na = [sizes[lb] for lb in free_a]
    nb = [sizes[lb] for lb in free_b]
    nc = [sizes[lb] for lb in contracted]
    if not contracted:
        at = _arrange(a, la, batch + free_a, sizes)
        bt = _arrange(b, lb_, batch + free_b, sizes)
        at = np.reshape(at, tuple(dims + na + [1] * len(nb)))
        bt = np.reshape(bt, tuple(dims + [1] * len(na) + nb))
        return at * bt, batch + free_a + free_b
    at = _arrange(a, la, batch + free_a + contracted, sizes)
    bt = _arrange(b, lb_, batch + contracted + free_b, sizes)
    at = np.reshape(at, tuple(dims + [math.prod(na), math.prod(nc)]))
    bt = np.reshape(bt, tuple(dims + [math.prod(nc), math.prod(nb)]))
    out = np.matmul(at, bt)
    return np.reshape(out, tuple(dims + na + nb)), batch + free_a + free_b


def contract(
    operands: Sequence[TracedArray], labels: Sequence[Labels], out: Labels, dtype: Any
) -> Any:
    """Evaluate an einsum given per-operand labels and output labels."""
    sizes = _sizes(operands, labels)
    xs = []
    for x, ls in zip(operands, labels):
        xs.append(_take_diagonals(cast(x, dtype), ls))
    acc, acc_labels = xs[0]
    for i in range(1, len(xs) + 1):
        later = {lb for _, ls in xs[i:] for lb in ls} | set(out)
        acc, acc_labels = _sum_out(acc, acc_labels, later)
        if i == len(xs):
            break
        x, ls = xs[i]
        after = {lb for _, other in xs[i + 1 :] for lb in other} | set(out)
        x, ls = _sum_out(x, ls, after | set(acc_labels))
        acc, acc_labels = _contract_pair(acc, acc_labels, x, ls, after, sizes)
    result = _arrange(acc, acc_labels, out, sizes)
    return cast(result, dtype)


@implements(np.einsum)
def _einsum(
    *args: Any,
    out: Any = None,
    dtype: Any = None,
    order: str = "K",
    casting: str = "safe",
    optimize: Any = False,
) -> Any:
    no_out("einsum", out)
    if not args:
        raise error(OpTypeError, "einsum: no subscripts given")
    if isinstance(args[0], str):
        spec, operands = args[0], list(args[1:])
    else:
        spec, operands = _interleaved(args)
    if not operands:
        raise error(OpTypeError, "einsum: no operands given")
    trace = trace_of(*operands)
    # einsum converts its operands with asarray, so Python scalars count as arrays
    arrays = [x if isinstance(x, TracedArray) else np.asarray(x) for x in operands]
    common = np.result_type(*[x.dtype for x in arrays]) if dtype is None else np.dtype(dtype)
    to_dtype(common)
    for i, x in enumerate(arrays):
        if not np.can_cast(x.dtype, common, casting):
            raise error(
                OpTypeError,
                f"einsum: operand {i} dtype could not be cast from {x.dtype} to {common} "
                f"according to the rule {casting!r}",
                hint="pass casting='same_kind' (or 'unsafe'), as NumPy requires too",
            )
    tracers = [lift(x, trace) for x in arrays]
    labels, out_labels = parse(spec, [x.ndim for x in tracers])
    return contract(tracers, labels, out_labels, common)


@implements(np.tensordot)
def _tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    trace = trace_of(a, b)
    a, b = lift(a, trace), lift(b, trace)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n < 0 or n > min(a.ndim, b.ndim):
            raise error(OpTypeError, f"tensordot: cannot contract {n} axes of {a.shape}, {b.shape}")
        axes_a: tuple[int, ...] = tuple(range(a.ndim - n, a.ndim))
        axes_b: tuple[int, ...] = tuple(range(n))
    else:
        try:
            first, second = axes
        except (TypeError, ValueError):
            raise error(
                OpTypeError, "tensordot: axes must be an int or a pair of sequences"
            ) from None
        axes_a, axes_b = static_ints(first, "axes"), static_ints(second, "axes")
    if len(axes_a) != len(axes_b):
        raise error(OpTypeError, "tensordot: shape-mismatch for sum")
    axes_a = tuple(i % a.ndim if a.ndim else i for i in axes_a)
    axes_b = tuple(i % b.ndim if b.ndim else i for i in axes_b)
    for i, j in zip(axes_a, axes_b):
        if not (0 <= i < a.ndim and 0 <= j < b.ndim) or a.shape[i] != b.shape[j]:
            raise error(
                OpTypeError,
                f"tensordot: shape-mismatch for sum (a{list(a.shape)} axis {i} vs "
                f"b{list(b.shape)} axis {j})",
            )
    la: Labels = [("a", i) for i in range(a.ndim)]
    lb: Labels = [("b", j) for j in range(b.ndim)]
    for i, j in zip(axes_a, axes_b):
        lb[j] = la[i]
    out = [la[i] for i in range(a.ndim) if i not in axes_a]
    out += [lb[j] for j in range(b.ndim) if j not in axes_b]
    return contract([a, b], [la, lb], out, np.result_type(a.dtype, b.dtype))

"""Independent NumPy oracles for every op, keyed by op name.

Each oracle takes the operands as NumPy arrays (a literal operand arrives as
a 0-d array of its dtype) and the node's attributes, and returns the expected
result, or raises :class:`Rejected` when the op's type rule must refuse the
operands. Oracles call NumPy directly or spell the op out with loops; none of
them goes through graphc, so they can disagree with the registry's reference.

Deliberate departures of graphc from plain NumPy (documented with the ops)
appear here as explicit rejections: graphc has no float16, so a NumPy result
of float16 is rejected; ``select`` needs a bool condition; ``concatenate``
needs equal dtypes; ``slice``/``pad``/``reshape`` take fully specified,
in-range attributes instead of NumPy's clamping and ``-1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from graphc.ir import DType, Graph, Literal

SUPPORTED = {d.np for d in DType}


class Rejected(Exception):
    """The op's type rule must reject these operands."""


def supported(result: Any) -> Any:
    """Reject results whose dtype graphc does not have (float16, int8...)."""
    for r in result if isinstance(result, tuple) else (result,):
        if np.asarray(r).dtype not in SUPPORTED:
            raise Rejected(f"NumPy gives {np.asarray(r).dtype}")
    return result


def numpy_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call NumPy; a TypeError/ValueError about dtypes or axes becomes Rejected."""
    try:
        with np.errstate(all="ignore"):
            out = fn(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise Rejected(str(exc)) from exc
    return supported(np.asarray(out) if not isinstance(out, tuple) else out)


def ufunc(fn: np.ufunc) -> Callable[..., Any]:
    """A ufunc oracle. Only a TypeError (no loop for these dtypes) is a type-level
    rejection; a ValueError depends on the values and must not happen in a case."""

    def oracle(*xs: np.ndarray) -> Any:
        try:
            np.broadcast_shapes(*(x.shape for x in xs))
        except ValueError as exc:
            raise Rejected(str(exc)) from exc
        try:
            with np.errstate(all="ignore"):
                out = fn(*xs)
        except TypeError as exc:
            raise Rejected(str(exc)) from exc
        return supported(np.asarray(out))

    return oracle


def like(dtype_of: np.ufunc, values: Callable[[np.ndarray], Any]) -> Callable[..., Any]:
    """An op outside NumPy's ufuncs: dtype as ``dtype_of`` resolves it, values
    computed in float64 by ``values`` and rounded to that dtype."""

    def oracle(x: np.ndarray) -> np.ndarray:
        out_dtype = numpy_call(dtype_of, np.zeros((1,), x.dtype)).dtype
        with np.errstate(all="ignore"):
            return np.asarray(values(x.astype(np.float64)), dtype=np.float64).astype(out_dtype)

    return oracle


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


_erf = np.vectorize(math.erf, otypes=[np.float64])


# -- reductions -----------------------------------------------------------------


def reduction(fn: Callable[..., Any]) -> Callable[..., Any]:
    def oracle(x: np.ndarray, *, axes: tuple[int, ...], keepdims: bool = False) -> Any:
        return numpy_call(fn, x, axis=tuple(axes), keepdims=keepdims)

    return oracle


def argreduce(fn: Callable[..., Any]) -> Callable[..., Any]:
    def oracle(x: np.ndarray, *, axis: int, keepdims: bool = False) -> Any:
        if x.ndim == 0:
            # NumPy lets axis=0 through for a 0-d array; graphc, like np.sum, does not.
            raise Rejected("0-d operand has no axis")
        return numpy_call(fn, x, axis=axis, keepdims=keepdims).astype(np.int64)

    return oracle


def cumsum(x: np.ndarray, *, axis: int, reverse: bool = False) -> np.ndarray:
    if not -x.ndim <= axis < x.ndim:
        raise Rejected("axis out of range")
    a = axis % x.ndim
    dtype = np.int64 if x.dtype in (np.bool_, np.int32) else x.dtype
    out = np.zeros(x.shape, dtype)
    n = x.shape[a]
    for i in range(n):
        part = range(i, n) if reverse else range(0, i + 1)
        index = (slice(None),) * a + (i,)
        window = np.take(x, list(part), axis=a).astype(dtype)
        out[index] = window.sum(axis=a, dtype=dtype)
    return out


# -- shape ops ------------------------------------------------------------------


def reshape(x: np.ndarray, *, shape: tuple[int, ...]) -> np.ndarray:
    if any(d < 0 for d in shape):
        raise Rejected("graphc shapes are fully specified")
    return numpy_call(np.reshape, x, shape)


def broadcast_in_dim(
    x: np.ndarray, *, shape: tuple[int, ...], broadcast_dimensions: tuple[int, ...]
) -> np.ndarray:
    dims = list(broadcast_dimensions)
    if len(dims) != x.ndim or any(not 0 <= d < len(shape) for d in dims):
        raise Rejected("one output dim per operand dim")
    if any(a >= b for a, b in zip(dims, dims[1:])):
        raise Rejected("dims must increase")
    if any(x.shape[i] not in (1, shape[d]) for i, d in enumerate(dims)):
        raise Rejected("size mismatch")
    out = np.empty(shape, x.dtype)
    for index in np.ndindex(*shape):
        source = tuple(0 if x.shape[i] == 1 else index[d] for i, d in enumerate(dims))
        out[index] = x[source]
    return out


def transpose(x: np.ndarray, *, perm: tuple[int, ...]) -> np.ndarray:
    if sorted(perm) != list(range(x.ndim)):
        raise Rejected("not a permutation")
    return np.transpose(x, perm)


def slice_(x: np.ndarray, *, start: Any, limit: Any, stride: Any) -> np.ndarray:
    if not len(start) == len(limit) == len(stride) == x.ndim:
        raise Rejected("one entry per dim")
    for s, l, st, n in zip(start, limit, stride, x.shape):
        if st < 1 or not 0 <= s <= l <= n:
            raise Rejected("out of range")
    return x[tuple(slice(s, l, st) for s, l, st in zip(start, limit, stride))]


def reverse(x: np.ndarray, *, axes: tuple[int, ...]) -> np.ndarray:
    norm = [a % x.ndim if x.ndim else a for a in axes]
    if any(not -x.ndim <= a < x.ndim for a in axes) or len(set(norm)) != len(norm):
        raise Rejected("bad axes")
    out = x
    for a in norm:
        out = np.flip(out, a)
    return out


def pad(x: np.ndarray, value: np.ndarray, *, low: Any, high: Any, interior: Any) -> np.ndarray:
    if value.shape != () or value.dtype != x.dtype:
        raise Rejected("scalar of the operand's dtype")
    if not len(low) == len(high) == len(interior) == x.ndim or min(interior, default=0) < 0:
        raise Rejected("bad padding config")
    shape = [
        lo + hi + n + max(n - 1, 0) * it for n, lo, hi, it in zip(x.shape, low, high, interior)
    ]
    if min(shape, default=0) < 0:
        raise Rejected("crops more than the operand has")
    out = np.full(shape, value, x.dtype)
    # Place each element at lo + i * (interior + 1); negative low/high crop it away.
    for index in np.ndindex(*x.shape):
        target = tuple(lo + i * (it + 1) for i, lo, it in zip(index, low, interior))
        if all(0 <= t < n for t, n in zip(target, shape)):
            out[target] = x[index]
    return out


def concatenate(*xs: np.ndarray, axis: int) -> np.ndarray:
    if not xs or xs[0].ndim == 0:
        raise Rejected("needs 1-d or more operands")
    if len({x.dtype for x in xs}) > 1:
        raise Rejected("graphc concatenates equal dtypes only")
    return numpy_call(np.concatenate, xs, axis=axis)


# -- indexing ---------------------------------------------------------------------


class OutOfRange(Exception):
    """The oracle found an index out of range (a run-time error in graphc)."""


def _axis_and_check(x: np.ndarray, idx: np.ndarray, axis: int) -> int:
    if idx.dtype not in (np.int32, np.int64):
        raise Rejected("integer indices")
    if not -x.ndim <= axis < x.ndim:
        raise Rejected("axis out of range")
    a = axis % x.ndim
    n = x.shape[a]
    if n == 0 and idx.size:
        # Every index into an empty axis is out of range, so graphc rejects it early.
        raise Rejected("empty axis")
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise OutOfRange
    return a


def gather(x: np.ndarray, idx: np.ndarray, *, axis: int) -> np.ndarray:
    a = _axis_and_check(x, idx, axis)
    out = np.empty(x.shape[:a] + idx.shape + x.shape[a + 1 :], x.dtype)
    for pos in np.ndindex(*idx.shape):
        i = int(idx[pos]) % x.shape[a]
        out[(slice(None),) * a + pos] = x[(slice(None),) * a + (i,)]
    return out


def scatter_add(x: np.ndarray, idx: np.ndarray, updates: np.ndarray, *, axis: int) -> np.ndarray:
    a = _axis_and_check(x, idx, axis)
    if updates.shape != x.shape[:a] + idx.shape + x.shape[a + 1 :] or updates.dtype != x.dtype:
        raise Rejected("updates must match")
    out = x.copy()
    for pos in np.ndindex(*idx.shape):
        i = int(idx[pos]) % x.shape[a]
        target = (slice(None),) * a + (i,)
        out[target] = out[target] + updates[(slice(None),) * a + pos]
    return out


# -- linalg, conv, pooling ----------------------------------------------------------


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.ndim == 0 or b.ndim == 0:
        raise Rejected("0-d operand")
    dtype = numpy_call(np.multiply, np.zeros((), a.dtype), np.zeros((), b.dtype)).dtype
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise Rejected("contracting dims differ")
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError as exc:
        raise Rejected("batch dims") from exc
    m, k, n = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    a3 = np.broadcast_to(a2, batch + (m, k)).astype(dtype)
    b3 = np.broadcast_to(b2, batch + (k, n)).astype(dtype)
    out = np.zeros(batch + (m, n), dtype)
    for index in np.ndindex(*batch):
        for i in range(m):
            for j in range(n):
                terms = [a3[index + (i, t)] * b3[index + (t, j)] for t in range(k)]
                if dtype == np.bool_:
                    out[index + (i, j)] = any(terms)
                else:
                    out[index + (i, j)] = sum(terms, dtype.type(0))
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def _padded(x: np.ndarray, padding: Any, fill: float) -> np.ndarray:
    (t, bm), (l, r) = padding
    out = np.full(x.shape[:2] + (x.shape[2] + t + bm, x.shape[3] + l + r), fill, x.dtype)
    out[:, :, t : t + x.shape[2], l : l + x.shape[3]] = x
    return out


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    *,
    stride: Any = (1, 1),
    padding: Any = ((0, 0), (0, 0)),
    dilation: Any = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    if x.ndim != 4 or w.ndim != 4:
        raise Rejected("NCHW and OIHW")
    dtype = numpy_call(np.multiply, np.zeros((), x.dtype), np.zeros((), w.dtype)).dtype
    if dtype.kind != "f":
        raise Rejected("conv2d computes in floating point")
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if groups < 1 or c % groups or o % groups or cg * groups != c:
        raise Rejected("groups")
    if min(stride) < 1 or min(dilation) < 1 or min(min(p) for p in padding) < 0:
        raise Rejected("window config")
    xp = _padded(x.astype(dtype), padding, 0.0)
    ho = (xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if ho < 1 or wo < 1:
        raise Rejected("kernel larger than input")
    out = np.zeros((n, o, ho, wo), dtype)
    og = o // groups
    for b_ in range(n):
        for oc in range(o):
            g = oc // og
            for i in range(ho):
                for j in range(wo):
                    total = 0.0
                    for ic in range(cg):
                        for p in range(kh):
                            for q in range(kw):
                                r = i * stride[0] + p * dilation[0]
                                s = j * stride[1] + q * dilation[1]
                                total += float(xp[b_, g * cg + ic, r, s]) * float(w[oc, ic, p, q])
                    out[b_, oc, i, j] = total
    return out


def _pool_windows(x: np.ndarray, window: Any, stride: Any, padding: Any) -> Any:
    if x.ndim != 4 or x.dtype.kind != "f":
        raise Rejected("float NCHW")
    if len(window) != 2 or min(window) < 1 or min(stride) < 1:
        raise Rejected("window")
    if any(p >= k for pair, k in zip(padding, window) for p in pair) or min(map(min, padding)) < 0:
        raise Rejected("padding must be smaller than the window")
    h = x.shape[2] + sum(padding[0])
    w = x.shape[3] + sum(padding[1])
    ho = (h - window[0]) // stride[0] + 1
    wo = (w - window[1]) // stride[1] + 1
    if ho < 1 or wo < 1:
        raise Rejected("window larger than input")
    for i in range(ho):
        for j in range(wo):
            rows = range(i * stride[0] - padding[0][0], i * stride[0] - padding[0][0] + window[0])
            cols = range(j * stride[1] - padding[1][0], j * stride[1] - padding[1][0] + window[1])
            inside = [
                (r, c) for r in rows for c in cols if 0 <= r < x.shape[2] and 0 <= c < x.shape[3]
            ]
            yield (i, j, ho, wo, inside, window[0] * window[1])


def max_pool2d(
    x: np.ndarray, *, window: Any, stride: Any = (1, 1), padding: Any = ((0, 0), (0, 0))
) -> Any:
    out = None
    for i, j, ho, wo, inside, _ in _pool_windows(x, window, stride, padding):
        if out is None:
            out = np.empty(x.shape[:2] + (ho, wo), x.dtype)
        # Padding counts as -inf, so only the elements inside the input matter.
        out[:, :, i, j] = np.max(np.stack([x[:, :, r, c] for r, c in inside], axis=-1), axis=-1)
    return out


def avg_pool2d(
    x: np.ndarray,
    *,
    window: Any,
    stride: Any = (1, 1),
    padding: Any = ((0, 0), (0, 0)),
    count_include_pad: bool = True,
) -> Any:
    out = None
    for i, j, ho, wo, inside, full in _pool_windows(x, window, stride, padding):
        if out is None:
            out = np.empty(x.shape[:2] + (ho, wo), x.dtype)
        total = sum((x[:, :, r, c].astype(np.float64) for r, c in inside), np.zeros(x.shape[:2]))
        out[:, :, i, j] = total / (full if count_include_pad else len(inside))
    return out


# -- sources ------------------------------------------------------------------------


def iota(*, shape: tuple[int, ...], dimension: int = 0, dtype: DType = DType.i64) -> np.ndarray:
    if not 0 <= dimension < len(shape) or min(shape) < 0 or dtype is DType.bool:
        raise Rejected("bad iota")
    return np.indices(shape)[dimension].astype(dtype.np)


def constant(*, value: np.ndarray) -> np.ndarray:
    return np.array(value)


_MASK = 0xFFFFFFFF


def philox4x32_10(counter: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, ...]:
    """Philox-4x32-10 on Python ints, written from the published algorithm."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & _MASK, (k1 + 0xBB67AE85) & _MASK
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & _MASK, (p0 >> 32) ^ c3 ^ k1, p0 & _MASK
    return c0, c1, c2, c3


def random_bits(key: np.ndarray, counter: np.ndarray, *, shape: tuple[int, ...]) -> np.ndarray:
    for x in (key, counter):
        if x.shape != () or x.dtype not in (np.int32, np.int64):
            raise Rejected("integer scalars")
    if min(shape, default=0) < 0:
        raise Rejected("negative dim")
    k = int(key) & 0xFFFFFFFFFFFFFFFF
    c = int(counter) & 0xFFFFFFFFFFFFFFFF
    size = math.prod(shape)
    flat = []
    for j in range(size):
        words = philox4x32_10(
            (j // 2 & _MASK, j // 2 >> 32, c & _MASK, c >> 32), (k & _MASK, k >> 32)
        )
        lo, hi = (words[0], words[1]) if j % 2 == 0 else (words[2], words[3])
        bits = lo | hi << 32
        flat.append(bits - (1 << 64) if bits >= 1 << 63 else bits)
    return np.array(flat, np.int64).reshape(shape)


# -- fusion ----------------------------------------------------------------------------


def run_with_oracles(g: Graph, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Evaluate ``g`` node by node with the oracles (never with graphc's references)."""
    env = dict(zip(g.inputs, arrays))
    for n in g.nodes:
        args = [x.as_array() if isinstance(x, Literal) else env[x] for x in n.inputs]
        attrs = dict(n.attrs)
        if n.subgraphs:
            attrs["_subgraphs"] = n.subgraphs
        result = ORACLES[n.op](*args, **attrs)
        results = result if isinstance(result, tuple) else (result,)
        env.update(zip(n.outputs, (np.asarray(r) for r in results)))
    return tuple(env[v] for v in g.outputs)


def fusion(*xs: np.ndarray, kind: str = "elementwise", _subgraphs: Any) -> Any:
    (body,) = _subgraphs
    if tuple(x.shape for x in xs) != tuple(t.shape for t in body.input_types):
        raise Rejected("operands must match the body")
    return run_with_oracles(body, *xs)


def remat(*xs: np.ndarray, recompute: bool = False, saved: int = 0, _subgraphs: Any) -> Any:
    # Its meaning is a call of the body; recomputation only changes its derivative.
    (body,) = _subgraphs
    if tuple((x.shape, x.dtype) for x in xs) != tuple(
        (t.shape, t.dtype.np) for t in body.input_types
    ):
        raise Rejected("operands must match the body")
    return run_with_oracles(body, *xs)


def _signature(arrays: Any) -> tuple[Any, ...]:
    return tuple((np.shape(a), np.asarray(a).dtype) for a in arrays)


def _declared(types: Any) -> tuple[Any, ...]:
    return tuple((t.shape, t.dtype.np) for t in types)


def scan(
    *operands: np.ndarray,
    length: int,
    num_carry: int,
    num_xs: int,
    num_consts: int,
    reverse: bool = False,
    _subgraphs: Any,
) -> Any:
    """A plain Python loop over the body, run with the oracles."""
    (body,) = _subgraphs
    if min(length, num_carry, num_xs, num_consts) < 0:
        raise Rejected("negative count")
    if num_carry + num_xs + num_consts != len(operands):
        raise Rejected("operand counts do not add up")
    carry = list(operands[:num_carry])
    xs = operands[num_carry : num_carry + num_xs]
    consts = list(operands[num_carry + num_xs :])
    if any(x.ndim == 0 or x.shape[0] != length for x in xs):
        raise Rejected("sliced operands need the scan's length as leading dimension")
    steps = [x[0] if length else np.zeros(x.shape[1:], x.dtype) for x in xs]
    if _signature(carry + steps + consts) != _declared(body.input_types):
        raise Rejected("the body's arguments do not match")
    if _declared(body.output_types[:num_carry]) != _signature(carry) or not body.outputs:
        raise Rejected("the body must return the carry's types first")
    y_types = body.output_types[num_carry:]
    per_step: dict[int, tuple[np.ndarray, ...]] = {}
    order = list(range(length))
    for t in reversed(order) if reverse else order:
        out = run_with_oracles(body, *carry, *(x[t] for x in xs), *consts)
        carry, per_step[t] = list(out[:num_carry]), out[num_carry:]
    ys = [
        np.array([per_step[t][j] for t in order], ty.dtype.np).reshape(length, *ty.shape)
        for j, ty in enumerate(y_types)
    ]
    return tuple(np.asarray(c) for c in carry) + tuple(ys)


def cond(pred: np.ndarray, *operands: np.ndarray, _subgraphs: Any) -> Any:
    """Python's if/else over the two branches, run with the oracles."""
    if pred.shape != () or pred.dtype != np.bool_:
        raise Rejected("the predicate must be a bool scalar")
    if_true, if_false = _subgraphs
    for branch in _subgraphs:
        if _declared(branch.input_types) != _signature(operands):
            raise Rejected("a branch's arguments do not match")
    if if_true.output_types != if_false.output_types or not if_true.outputs:
        raise Rejected("the branches must return the same types")
    return run_with_oracles(if_true if bool(pred) else if_false, *operands)


def while_(*operands: np.ndarray, num_carry: int, _subgraphs: Any) -> Any:
    """Python's while over the predicate and the body, run with the oracles."""
    pred, body = _subgraphs
    if not 0 < num_carry <= len(operands):
        raise Rejected("needs a carry")
    for g in _subgraphs:
        if _declared(g.input_types) != _signature(list(operands)):
            raise Rejected("the arguments do not match")
    if _declared(pred.output_types) != (((), np.bool_),):
        raise Rejected("the predicate must return a bool scalar")
    carry, consts = list(operands[:num_carry]), list(operands[num_carry:])
    if _declared(body.output_types) != _signature(carry):
        raise Rejected("the body must return the carry's types")
    while bool(run_with_oracles(pred, *carry, *consts)[0]):
        carry = list(run_with_oracles(body, *carry, *consts))
    return tuple(np.asarray(c) for c in carry)


def all_reduce(
    x: np.ndarray, *, reduction: str = "sum", group: int = 0, compress: str = ""
) -> np.ndarray:
    # The tests run as one process: a world of one, where every reduction is the identity.
    if reduction not in ("sum", "max", "min") or group < 0 or compress not in ("", "bf16", "f16"):
        raise Rejected("unknown reduction or compression, or negative group")
    if reduction == "sum" and x.dtype == np.bool_:
        raise Rejected("a sum of bools")
    if not compress:
        return np.array(x)
    if reduction != "sum" or x.dtype.kind != "f":
        raise Rejected("compression applies to sums of floats")
    single = x.astype(np.float32)
    if compress == "f16":
        with np.errstate(over="ignore"):
            rounded = single.astype(np.float16).astype(np.float64)
    else:
        # bfloat16 keeps 8 significant bits: round the frexp mantissa to 1/256, ties to even.
        mantissa, exponent = np.frexp(single.astype(np.float64))
        rounded = np.ldexp(np.round(mantissa * 256) / 256, exponent)
    # Plus zero, as the sum over ranks starting from zero (-0.0 becomes 0.0).
    return np.zeros((), x.dtype) + rounded.astype(np.float32).astype(x.dtype)


def all_reduce_start(x: np.ndarray, *, reduction: str = "sum", group: int = 0) -> np.ndarray:
    return all_reduce(x, reduction=reduction, group=group)


def all_reduce_done(r: np.ndarray, *after: np.ndarray) -> np.ndarray:
    return np.array(r)


def optimization_barrier(*xs: np.ndarray) -> Any:
    if not xs:
        raise Rejected("needs an operand")
    return tuple(np.array(x) for x in xs) if len(xs) > 1 else np.array(xs[0])


def select(cond: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if cond.dtype != np.bool_:
        raise Rejected("graphc's select takes a bool condition")
    return numpy_call(np.where, cond, x, y)


def cast(x: np.ndarray, *, dtype: DType | str) -> np.ndarray:
    with np.errstate(all="ignore"):
        return x.astype(np.dtype(dtype.np if isinstance(dtype, DType) else dtype))


ORACLES: dict[str, Callable[..., Any]] = {
    # unary math
    "neg": ufunc(np.negative),
    "exp": ufunc(np.exp),
    "exp2": ufunc(np.exp2),
    "expm1": ufunc(np.expm1),
    "log": ufunc(np.log),
    "log2": ufunc(np.log2),
    "log10": ufunc(np.log10),
    "log1p": ufunc(np.log1p),
    "sqrt": ufunc(np.sqrt),
    "cbrt": ufunc(np.cbrt),
    "rsqrt": like(np.sqrt, lambda x: 1.0 / np.sqrt(x)),
    "sigmoid": like(np.exp, _sigmoid),
    "tanh": ufunc(np.tanh),
    "sin": ufunc(np.sin),
    "cos": ufunc(np.cos),
    "tan": ufunc(np.tan),
    "asin": ufunc(np.arcsin),
    "acos": ufunc(np.arccos),
    "atan": ufunc(np.arctan),
    "sinh": ufunc(np.sinh),
    "cosh": ufunc(np.cosh),
    "asinh": ufunc(np.arcsinh),
    "acosh": ufunc(np.arccosh),
    "atanh": ufunc(np.arctanh),
    "erf": like(np.exp, _erf),
    "abs": ufunc(np.absolute),
    "sign": ufunc(np.sign),
    "floor": ufunc(np.floor),
    "ceil": ufunc(np.ceil),
    "round": lambda x: numpy_call(np.round, x),
    "not": ufunc(np.invert),
    "isnan": ufunc(np.isnan),
    "isinf": ufunc(np.isinf),
    "isfinite": ufunc(np.isfinite),
    # binary
    "add": ufunc(np.add),
    "sub": ufunc(np.subtract),
    "mul": ufunc(np.multiply),
    "div": ufunc(np.true_divide),
    "pow": ufunc(np.power),
    "max": ufunc(np.maximum),
    "min": ufunc(np.minimum),
    "atan2": ufunc(np.arctan2),
    "rem": ufunc(np.remainder),
    "floordiv": ufunc(np.floor_divide),
    "and": ufunc(np.bitwise_and),
    "or": ufunc(np.bitwise_or),
    "xor": ufunc(np.bitwise_xor),
    "eq": ufunc(np.equal),
    "ne": ufunc(np.not_equal),
    "lt": ufunc(np.less),
    "le": ufunc(np.less_equal),
    "gt": ufunc(np.greater),
    "ge": ufunc(np.greater_equal),
    "select": select,
    "cast": cast,
    "stop_gradient": lambda x: np.array(x),
    # reductions
    "reduce_sum": reduction(np.sum),
    "reduce_prod": reduction(np.prod),
    "reduce_max": reduction(np.max),
    "reduce_min": reduction(np.min),
    "argmax": argreduce(np.argmax),
    "argmin": argreduce(np.argmin),
    "cumsum": cumsum,
    # shape
    "reshape": reshape,
    "broadcast_in_dim": broadcast_in_dim,
    "transpose": transpose,
    "slice": slice_,
    "reverse": reverse,
    "pad": pad,
    "concatenate": concatenate,
    # indexing, linalg, conv
    "gather": gather,
    "scatter_add": scatter_add,
    "matmul": matmul,
    "conv2d": conv2d,
    "max_pool2d": max_pool2d,
    "avg_pool2d": avg_pool2d,
    # sources
    "iota": iota,
    "constant": constant,
    "random_bits": random_bits,
    "fusion": fusion,
    "remat": remat,
    "optimization_barrier": optimization_barrier,
    "all_reduce": all_reduce,
    "all_reduce_start": all_reduce_start,
    "all_reduce_done": all_reduce_done,
    "scan": scan,
    "cond": cond,
    "while": while_,
}

# Oracles that compute the same floating-point expression as NumPy's own
# ufunc; the rest (and every float op on f32 inputs) compare with a tolerance.
APPROXIMATE = frozenset(
    {
        "cumsum",
        "rsqrt",
        "sigmoid",
        "erf",
        "matmul",
        "conv2d",
        "avg_pool2d",
        "fusion",
        "remat",
        "scan",
        "cond",
        "while",
    }
)

# Sorting, special functions and factorizations live in their own module.
from .oracles_numerics import APPROXIMATE as _NUMERIC_APPROXIMATE  # noqa: E402
from .oracles_numerics import ORACLES as _NUMERIC_ORACLES  # noqa: E402

ORACLES.update(_NUMERIC_ORACLES)
APPROXIMATE = APPROXIMATE | _NUMERIC_APPROXIMATE

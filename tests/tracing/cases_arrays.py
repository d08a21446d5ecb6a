"""Function cases: reductions, shape manipulation, layout."""

from __future__ import annotations

import numpy as np

from .cases_common import A32, BOOL, I32, WITH_NAN, A, B, C, V, case

# -- reductions ----------------------------------------------------------------------------------
for x in (A, A32, I32, BOOL):
    tag = x.dtype.name
    case(
        np.sum,
        f"sum-{tag}",
        lambda a: (np.sum(a), a.sum(axis=1), np.sum(a, axis=(0, 1), keepdims=True)),
        x,
    )
    case(np.prod, f"prod-{tag}", lambda a: (np.prod(a, axis=0), a.prod(keepdims=True)), x)
    case(
        np.max, f"max-{tag}", lambda a: (np.max(a), a.max(axis=1), np.max(a, axis=0, initial=0)), x
    )
    case(np.min, f"min-{tag}", lambda a: (np.min(a), a.min(axis=-1, keepdims=True)), x)
    case(
        np.mean,
        f"mean-{tag}",
        lambda a: (np.mean(a), a.mean(axis=0), np.mean(a, axis=1, keepdims=True)),
        x,
    )
    case(
        np.argmax,
        f"argmax-{tag}",
        lambda a: (np.argmax(a), a.argmax(axis=1), np.argmax(a, 0, keepdims=True)),
        x,
    )
    case(np.argmin, f"argmin-{tag}", lambda a: (np.argmin(a), a.argmin(axis=0)), x)
    case(
        np.all,
        f"all-{tag}",
        lambda a: (np.all(a), a.all(axis=1), np.all(a, axis=0, keepdims=True)),
        x,
    )
    case(np.any, f"any-{tag}", lambda a: (np.any(a), a.any(axis=0)), x)
    case(np.count_nonzero, f"count_nonzero-{tag}", lambda a: (np.count_nonzero(a, axis=0),), x)
    case(
        np.cumsum,
        f"cumsum-{tag}",
        lambda a: (np.cumsum(a), a.cumsum(axis=1), np.cumsum(a, 0, np.float64)),
        x,
    )
    case(np.cumprod, f"cumprod-{tag}", lambda a: (np.cumprod(a), a.cumprod(axis=1)), x)
for x in (A, A32, I32):
    tag = x.dtype.name
    case(
        np.var,
        f"var-{tag}",
        lambda a: (np.var(a), a.var(axis=0, ddof=1), np.var(a, 1, keepdims=True)),
        x,
    )
    case(
        np.std,
        f"std-{tag}",
        lambda a: (np.std(a), a.std(axis=1), np.std(a, axis=0, correction=1)),
        x,
    )
    case(np.ptp, f"ptp-{tag}", lambda a: (np.ptp(a), np.ptp(a, axis=1, keepdims=True)), x)
case(np.amax, "amax", lambda a: np.amax(a, axis=0), A)
case(np.amin, "amin", lambda a: np.amin(a, axis=1), A)
case(np.sum, "sum-dtype", lambda a: (np.sum(a, dtype=np.int32), np.sum(a, dtype=np.float32)), I32)
case(np.max, "max-empty-initial", lambda a: np.max(a[:, :0], axis=1, initial=-1.0), A)
case(
    np.cumsum,
    "scans-dtype",
    lambda a: (
        np.cumsum(a, 1, np.int32),
        np.cumprod(a, 0, np.int32),
        np.cumsum(a > 0, 0, np.int32),
    ),
    I32,
)
case(np.mean, "mean-dtype", lambda a: np.mean(a, dtype=np.float32), I32)
case(
    np.cumprod,
    "cumprod-zeros-and-signs",
    lambda a: np.cumprod(a, axis=0),
    np.array([[0.5, -2.0], [0.0, 3.0], [4.0, -1.0]]),
)
case(
    getattr(np, "cumulative_sum", np.cumsum),
    "cumulative_sum",
    lambda a: np.cumulative_sum(a, axis=1, include_initial=True),
    A,
)
case(
    getattr(np, "cumulative_prod", np.cumprod),
    "cumulative_prod",
    lambda a: np.cumulative_prod(a, axis=0),
    I32,
)
case(np.nansum, "nansum", lambda a: (np.nansum(a), np.nansum(a, axis=0)), WITH_NAN)
case(np.nanprod, "nanprod", lambda a: np.nanprod(a, axis=1), WITH_NAN)
case(
    np.nanmax,
    "nanmax",
    lambda a: (np.nanmax(a, axis=0), np.nanmax(np.full((2, 2), np.nan) + a[:2, :2])),
    WITH_NAN,
)
case(np.nanmin, "nanmin", lambda a: np.nanmin(a, axis=1, keepdims=True), WITH_NAN)
case(np.nanmean, "nanmean", lambda a: (np.nanmean(a), np.nanmean(a, axis=0)), WITH_NAN)
case(np.nanmean, "nanmean-f32", lambda a: np.nanmean(a, axis=1), WITH_NAN.astype(np.float32))
case(np.nanvar, "nanvar", lambda a: (np.nanvar(a), np.nanvar(a, axis=0, ddof=1)), WITH_NAN)
case(np.nanstd, "nanstd", lambda a: np.nanstd(a, axis=1, keepdims=True), WITH_NAN)
case(np.nancumsum, "nancumsum", lambda a: np.nancumsum(a, axis=1), WITH_NAN)
case(np.nancumprod, "nancumprod", lambda a: np.nancumprod(a, axis=0), WITH_NAN)
case(
    np.nanmean, "nan-reductions-of-ints", lambda a: (np.nanmean(a), np.nanvar(a), np.nansum(a)), I32
)
case(
    np.average,
    "average",
    lambda a, w: (
        np.average(a),
        np.average(a, axis=1, weights=w),
        np.average(a, 1, w, returned=True),
    ),
    A,
    np.abs(V),
)
case(np.average, "average-int", lambda a: np.average(a, axis=0, weights=np.array([1, 2, 3])), I32)

# -- shapes --------------------------------------------------------------------------------------
case(
    np.reshape, "reshape", lambda a: (np.reshape(a, (4, 3)), a.reshape(2, -1), a.reshape((12,))), A
)
case(np.ravel, "ravel", lambda a: (np.ravel(a), a.ravel(), a.flatten()), A)
case(
    np.transpose,
    "transpose",
    lambda a: (np.transpose(a), np.transpose(a, (2, 0, 1)), a.T, a.transpose(1, 0, 2)),
    C,
)
case(
    getattr(np, "permute_dims", np.transpose),
    "permute_dims",
    lambda a: np.permute_dims(a, (1, 2, 0)),
    C,
)
case(np.matrix_transpose, "matrix_transpose", lambda a: (np.matrix_transpose(a), a.mT), C)
case(np.swapaxes, "swapaxes", lambda a: (np.swapaxes(a, 0, 2), a.swapaxes(-1, 1)), C)
case(np.moveaxis, "moveaxis", lambda a: (np.moveaxis(a, 0, -1), np.moveaxis(a, (0, 1), (2, 0))), C)
case(
    np.rollaxis,
    "rollaxis",
    lambda a: (np.rollaxis(a, 2), np.rollaxis(a, 0, 2), np.rollaxis(a, 1, 3)),
    C,
)
case(np.expand_dims, "expand_dims", lambda a: (np.expand_dims(a, 0), np.expand_dims(a, (1, -1))), A)
case(
    np.squeeze,
    "squeeze",
    lambda a: (np.squeeze(a), np.squeeze(a, axis=2), a.squeeze(0)),
    A.reshape(1, 3, 1, 4),
)
case(np.broadcast_to, "broadcast_to", lambda a: np.broadcast_to(a, (2, 3, 4)), A[:, :1])
case(np.broadcast_arrays, "broadcast_arrays", lambda a, b: np.broadcast_arrays(a, b), A, V)
case(
    (np.shape, np.ndim, np.size),
    "shape-ndim-size",
    lambda a: a * (np.ndim(a) + np.size(a) + np.size(a, 1) + np.shape(a)[0]),
    A,
)
case(np.result_type, "result_type", lambda a: a.astype(np.result_type(a, np.float32)), I32)
case(np.copy, "copy", lambda a: (np.copy(a), a.copy()), A)
case(
    np.concatenate,
    "concatenate",
    lambda a, b: (
        np.concatenate([a, b.T], axis=0),
        np.concatenate([a, b.T[:3]], 1),
        np.concatenate([a, b], axis=None),
    ),
    A,
    B,
)
case(
    np.concatenate,
    "concatenate-mixed",
    lambda a: np.concatenate([a, np.ones((1, 4), np.int32), a]),
    A32,
)
case(getattr(np, "concat", np.concatenate), "concat", lambda a: np.concat([a, a], axis=1), A)
case(
    np.stack,
    "stack",
    lambda a, b: (np.stack([a, b]), np.stack([a, b], axis=-1), np.stack((a, 2 * a), 1)),
    A,
    A + 1,
)
case(np.row_stack, "row_stack", lambda a, v: np.row_stack([a, v]), A, V)
case(np.vstack, "vstack", lambda a, v: (np.vstack([a, v]), np.vstack([v, v])), A, V)
case(np.hstack, "hstack", lambda a, v: (np.hstack([a, a]), np.hstack([v, v[:2]])), A, V)
case(np.dstack, "dstack", lambda a: np.dstack([a, a, a]), A)
case(np.column_stack, "column_stack", lambda a, v: np.column_stack([a.T, v, v]), A, V)
case(
    (np.atleast_1d, np.atleast_2d, np.atleast_3d),
    "atleast",
    lambda s, v, a: (
        np.atleast_1d(s),
        np.atleast_2d(v),
        np.atleast_3d(a),
        np.atleast_3d(v),
        np.atleast_1d(s, v),
    ),
    np.float64(2.0),
    V,
    A,
)
case(
    np.split,
    "split",
    lambda a: (np.split(a, 2, axis=1), np.split(a, [1, 5], axis=1), np.split(a, [-2], axis=0)),
    A,
)
case(
    np.array_split, "array_split", lambda a: (np.array_split(a, 3, axis=1), np.array_split(a, 4)), A
)
case(
    (np.hsplit, np.vsplit, np.dsplit),
    "hvdsplit",
    lambda c: (np.hsplit(c, 3), np.vsplit(c, 2), np.dsplit(c, [1, 3])),
    C,
)
case(np.unstack, "unstack", lambda a: (np.unstack(a), np.unstack(a, axis=1)), A)

# -- layout --------------------------------------------------------------------------------------
case(np.tile, "tile", lambda a: (np.tile(a, 2), np.tile(a, (2, 1, 3)), np.tile(a[0], (2, 2))), A)
case(
    np.repeat,
    "repeat",
    lambda a: (
        np.repeat(a, 2),
        np.repeat(a, 3, axis=1),
        np.repeat(a, [1, 0, 2], axis=0),
        a.repeat(2, 0),
    ),
    A,
)
case(np.flip, "flip", lambda a: (np.flip(a), np.flip(a, 1), np.flip(a, (0, 2))), C)
case((np.fliplr, np.flipud), "fliplr-flipud", lambda a: (np.fliplr(a), np.flipud(a)), A)
case(
    np.rot90,
    "rot90",
    lambda a: tuple(np.rot90(a, k) for k in range(-1, 4)) + (np.rot90(a, 1, (2, 0)),),
    C,
)
case(
    np.roll,
    "roll",
    lambda a: (
        np.roll(a, 1),
        np.roll(a, -2, axis=1),
        np.roll(a, (1, 2), axis=(0, 0)),
        np.roll(a, 7, 2),
    ),
    C,
)
case(
    np.pad,
    "pad-constant",
    lambda a: (
        np.pad(a, 1),
        np.pad(a, ((1, 2), (0, 3)), constant_values=-1.5),
        np.pad(a, (2, 1), constant_values=((1, 2), (3, 4))),
    ),
    A,
)
case(np.pad, "pad-int", lambda a: np.pad(a, 2, constant_values=7.9), I32)
case(np.pad, "pad-traced-value", lambda a, v: np.pad(a, 1, constant_values=v), A, 2.5)
for _mode in ("edge", "reflect", "symmetric", "wrap", "maximum", "minimum", "mean", "empty"):
    case(
        np.pad,
        f"pad-{_mode}",
        lambda a, m=_mode: (
            (np.pad(a, ((1, 2), (3, 1)), mode=m), np.pad(a, 1, m))
            if m != "empty"
            else np.pad(a, 0, m)
        ),
        A,
    )
case(np.pad, "pad-reflect-size-1", lambda a: np.pad(a, 2, mode="reflect"), A[:1, :1])
case(np.tril, "tril", lambda a: (np.tril(a), np.tril(a, -1), np.tril(a, 2), np.tril(a[0])), A)
case(np.triu, "triu", lambda a: (np.triu(a), np.triu(a, 1), np.triu(a, -2)), C)
case(np.triu, "triu-bool", lambda a: np.triu(a), BOOL)
case(
    np.diagonal,
    "diagonal",
    lambda a: (
        np.diagonal(a),
        np.diagonal(a, 1),
        np.diagonal(a, -2),
        np.diagonal(a, 5),
        a.diagonal(0, 2, 0),
    ),
    C,
)
case(
    np.diag,
    "diag",
    lambda v, a: (
        np.diag(v),
        np.diag(v, 2),
        np.diag(v, -1),
        np.diag(a),
        np.diag(a, -1),
        np.diag(a, 3),
    ),
    V,
    A,
)
case(np.diagflat, "diagflat", lambda a: np.diagflat(a[:2], 1), A)
case(
    np.meshgrid,
    "meshgrid",
    lambda x, y: (
        np.meshgrid(x, y),
        np.meshgrid(x, y, indexing="ij"),
        np.meshgrid(x, y, sparse=True),
    ),
    V,
    A[0, :3],
)
case(
    np.bincount,
    "bincount",
    lambda i, v: (
        np.bincount(np.abs(i[0]), minlength=6),
        np.bincount(np.abs(i[1]), weights=v, minlength=7),
        np.bincount(np.array([1, 4, 1]), weights=v[:3]),
    ),
    I32,
    V,
)
case(
    np.append,
    "append",
    lambda a, v: (np.append(a, 1.0), np.append(a, a[:1], axis=0), np.append(v, [[2.0]])),
    A32,
    V,
)
case(
    (np.linspace, np.logspace, np.geomspace),
    "spacings",
    lambda v: (
        np.linspace(v[0], v[1], 5),
        np.linspace(v[:2], v[2:], 3, axis=1, endpoint=False),
        np.logspace(v[0], v[1], 4, base=2.0),
        np.geomspace(np.abs(v[0]) + 1.0, np.abs(v[1]) + 2.0, 4),
    ),
    V,
)
case(np.gradient, "gradient", lambda a: (np.gradient(a), np.gradient(a[0], 0.5, edge_order=2)), A)
case(
    np.full,
    "full-traced-fill",
    lambda a: (
        np.full((2, 3), a[0, 0]),
        np.full(3, a[1, 1], dtype=np.float32),
        np.full((2, 4), a[0]),
    ),
    A,
)

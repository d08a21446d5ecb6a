"""The primitive op set. Importing this package registers every op."""

from . import (  # noqa: F401
    collective,
    control,
    conv,
    elementwise,
    factor,
    fusion,
    incomplete,
    incomplete_grad,
    incomplete_inverse,
    indexing,
    linalg,
    lu,
    matfun,
    misc,
    qr,
    random,
    reduce,
    shape,
    sort,
    special,
    svd,
)
from .registry import REQUIRED, Attr, OpDef, all_ops, get_op, register, set_vjp

__all__ = ["REQUIRED", "Attr", "OpDef", "all_ops", "get_op", "register", "set_vjp"]

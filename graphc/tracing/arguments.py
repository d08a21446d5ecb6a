"""Arguments graphc cannot take, and arguments used as what they are not.

``np.matrix`` (whose ``*`` is a matrix product) and masked arrays (whose mask
would be dropped) are refused up front. ``None`` and Python lists are
legitimate pytree nodes (an empty subtree, a container of separate values),
so the function receives them as they are; when it then uses one as an array
(``x * 2`` on None, ``x.shape`` on a list), the error names the argument and
says what to pass instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.ir import GraphcError, InputError, Loc, format_message

from .context import _SKIP, current_trace, user_location


def refused_kind(leaf: Any) -> str | None:
    """What ``leaf`` is, when it is an ndarray subclass graphc refuses."""
    if type(leaf) is np.ndarray or not isinstance(leaf, np.ndarray):
        return None
    if isinstance(leaf, np.matrix):
        return "an np.matrix"
    if isinstance(leaf, np.ma.MaskedArray):
        return "a masked array (np.ma)"
    return None


def refused_leaf_error(leaf: Any, name: str, kind: str) -> InputError:
    if kind.startswith("an np.matrix"):
        why = "its * and ** are matrix products and it stays 2-d, which graphc does not trace"
        hint = f"pass np.asarray({name}) and write matrix products with @"
    else:
        why = "graphc would drop its mask and compute with the hidden values"
        hint = f"pass {name}.filled(value), or the data and the mask as two arrays and use np.where"
    return InputError(
        format_message(f"argument '{name}' is {kind}: {why}", loc=user_location(4), hint=hint)
    )


def containers(
    args: Sequence[Any], names: Sequence[str]
) -> tuple[list[str], list[tuple[str, str]]]:
    """The paths (``x`` or ``params['b']``) of the arguments that are None, and
    of those that are lists or tuples holding only numbers, with their kind."""
    nones: list[str] = []
    sequences: list[tuple[str, str]] = []

    def walk(x: Any, path: str) -> None:
        if x is None:
            nones.append(path)
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{path}[{k!r}]")
        elif isinstance(x, (list, tuple)) and not hasattr(type(x), "_fields"):
            if x and all(isinstance(v, (int, float, np.number, np.ndarray)) for v in x):
                sequences.append((path, type(x).__name__ if type(x) in (list, tuple) else ""))
            for i, v in enumerate(x):
                walk(v, f"{path}[{i}]")

    for a, name in zip(args, names):
        walk(a, name)
    return nones, sequences


def none_operand_error(what: str) -> InputError:
    """``None`` reached graphc where an array is needed."""
    trace = current_trace()
    nones: list[str] = getattr(trace, "none_arguments", [])
    if nones:
        listed = ", ".join(f"'{n}'" for n in nones)
        head = f"argument {listed} is None" if len(nones) == 1 else f"arguments {listed} are None"
        msg = f"{head}, but {what} needs an array there"
    else:
        msg = f"{what} got None where an array is needed (a function that returns nothing?)"
    return InputError(
        format_message(
            msg,
            loc=user_location(4),
            hint="pass an array or a number; None is an empty subtree in graphc's argument "
            "trees, so the function receives None itself",
        )
    )


def explain_python_error(
    exc: BaseException, args: Sequence[Any], names: Sequence[str]
) -> InputError | None:
    """An InputError naming the argument, when ``exc`` (a TypeError or
    AttributeError Python raised in the traced function) comes from using a
    None or list argument as an array; otherwise None."""
    if isinstance(exc, GraphcError) or not isinstance(exc, (TypeError, AttributeError)):
        return None
    text = str(exc)
    nones, sequences = containers(args, names)
    loc = _raising_user_line(exc)
    if nones and "NoneType" in text:
        listed = ", ".join(f"'{n}'" for n in nones)
        head = f"argument {listed} is None" if len(nones) == 1 else f"arguments {listed} are None"
        return InputError(
            format_message(
                f"the function used None as an array ({text}); {head}",
                loc=loc,
                hint="pass an array or a number; None is an empty subtree in graphc's "
                "argument trees, so the function receives None itself",
            )
        )
    for kind in ("list", "tuple"):
        if f"'{kind}'" in text or f"{kind} (not" in text or f"concatenate {kind}" in text:
            paths = [p for p, k in sequences if k == kind]
            if not paths:
                continue
            listed = ", ".join(f"'{p}'" for p in paths)
            return InputError(
                format_message(
                    f"the function used a {kind} as an array ({text}); argument {listed} is a "
                    f"Python {kind}",
                    loc=loc,
                    hint=f"a {kind} argument is a container of separate values (a pytree), "
                    f"as in JAX; pass np.asarray({paths[0]}) to give the function one array",
                )
            )
    return None


def _raising_user_line(exc: BaseException) -> Loc | None:
    """The last line of user code in ``exc``'s traceback."""
    tb = exc.__traceback__
    found = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if not code.co_filename.startswith(_SKIP):
            found = Loc(code.co_filename, tb.tb_lineno, None, code.co_name)
        tb = tb.tb_next
    return found


__all__ = [
    "containers",
    "explain_python_error",
    "none_operand_error",
    "refused_kind",
    "refused_leaf_error",
]

"""Misuse of gc.scan and gc.cond raises a GraphcError that names the user's
line, traced and eager alike; the TracingError for Python control flow
points to them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc.ir import GraphBuilder, OpTypeError, TensorType, f32, f64, i64

HERE = __file__


def line_of(marker: str) -> int:
    """The line of this file that holds ``marker`` (a comment on the call)."""
    lines = inspect.getsource(inspect.getmodule(line_of)).splitlines()  # type: ignore[arg-type]
    (found,) = [i + 1 for i, text in enumerate(lines) if text.rstrip().endswith(f"# {marker}")]
    return found


def check_error(
    call: Callable[[], Any], marker: str, *phrases: str, error: type = OpTypeError
) -> None:
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert isinstance(info.value, gc.GraphcError)
    assert f"{HERE}:{line_of(marker)}" in message, message
    for phrase in phrases:
        assert phrase in message, message


def traced(f: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: gc.trace(f, *args)


def eager(f: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: f(*args)


WAYS = {"eager": eager, "traced": traced, "grad": lambda f, *a: lambda: gc.grad(f)(*a)}


@pytest.mark.parametrize("way", WAYS)
def test_carry_shape_changed_by_the_body(way: str) -> None:
    def f(xs: np.ndarray) -> Any:
        return gc.scan(lambda c, x: (c * x, None), 1.0, xs)[0].sum()  # shape

    check_error(WAYS[way](f, np.ones((3, 2))), "shape", "carry", "f64[]", "f64[2]")


@pytest.mark.parametrize("way", WAYS)
def test_carry_dtype_changed_by_the_body(way: str) -> None:
    def f(xs: np.ndarray) -> Any:
        init = np.zeros(2, np.float32)
        return gc.scan(lambda c, x: (c + x, None), init, xs)[0].sum()  # dtype

    check_error(WAYS[way](f, np.ones((3, 2))), "dtype", "f32[2]", "f64[2]", ".astype")


@pytest.mark.parametrize("way", WAYS)
def test_carry_structure_changed_by_the_body(way: str) -> None:
    def f(xs: np.ndarray) -> Any:
        return gc.scan(lambda c, x: ((c[0], c[1], x), None), (1.0, 2.0), xs)[0][0]  # structure

    check_error(WAYS[way](f, np.ones(3)), "structure", "structure of the carry")


@pytest.mark.parametrize("way", WAYS)
def test_body_must_return_a_pair(way: str) -> None:
    def f(xs: np.ndarray) -> Any:
        return gc.scan(lambda c, x: c + x, 0.0, xs)[0]  # pair

    check_error(WAYS[way](f, np.ones(3)), "pair", "must return a pair (carry, y)")


@pytest.mark.parametrize("way", WAYS)
def test_xs_of_different_lengths(way: str) -> None:
    def f(a: np.ndarray, b: np.ndarray) -> Any:
        return gc.scan(lambda c, x: (c + x[0].sum() + x[1].sum(), None), 0.0, (a, b))[0]  # lengths

    check_error(WAYS[way](f, np.ones((3, 2)), np.ones(4)), "lengths", "different lengths", "3", "4")


def test_length_disagrees_with_xs_or_is_missing() -> None:
    def f(xs: np.ndarray) -> Any:
        return gc.scan(lambda c, x: (c + x, None), 0.0, xs, length=5)[0]  # length

    check_error(traced(f, np.ones(3)), "length", "length=5")
    check_error(eager(f, np.ones(3)), "length", "length=5")

    def g(w: np.ndarray) -> Any:
        return gc.scan(lambda c, x: (c * w, None), w, None)[0]  # missing

    check_error(traced(g, np.ones(2)), "missing", "length=N")


def test_scalar_xs_leaf() -> None:
    def f(x: np.ndarray) -> Any:
        return gc.scan(lambda c, x: (c + x, None), 0.0, {"a": x})[0]  # scalar

    check_error(traced(f, np.float64(2.0)), "scalar", "xs['a'] is a scalar")


@pytest.mark.parametrize("way", ["eager", "traced"])
def test_predicate_must_be_a_bool_scalar(way: str) -> None:
    def vector(x: np.ndarray) -> Any:
        return gc.cond(x > 0, lambda x: x, lambda x: -x, x)  # vector

    def number(x: np.ndarray) -> Any:
        return gc.cond(x.sum(), lambda x: x, lambda x: -x, x)  # number

    check_error(WAYS[way](vector, np.ones(3)), "vector", "bool scalar", "bool[3]")
    check_error(WAYS[way](number, np.ones(3)), "number", "bool scalar", "f64[]")


def test_python_int_predicate_is_refused() -> None:
    def f(x: np.ndarray) -> Any:
        return gc.cond(1, lambda x: x, lambda x: -x, x)  # int

    check_error(eager(f, np.ones(2)), "int", "bool scalar", "int of type i64[]")


@pytest.mark.parametrize("way", ["traced", "grad"])
def test_branches_return_different_types(way: str) -> None:
    def shapes(x: np.ndarray) -> Any:
        return gc.cond(x.sum() > 0, lambda x: x, lambda x: x[:2], x).sum()  # shapes

    def dtypes(x: np.ndarray) -> Any:
        return gc.cond(x.sum() > 0, lambda x: x, lambda x: x.astype(np.float32), x).sum()  # dt

    def structures(x: np.ndarray) -> Any:
        return gc.cond(x.sum() > 0, lambda x: (x, x), lambda x: x, x)[0].sum()  # trees

    check_error(WAYS[way](shapes, np.ones(3)), "shapes", "different types", "f64[3]", "f64[2]")
    check_error(WAYS[way](dtypes, np.ones(3)), "dt", "different types", "f64[3]", "f32[3]")
    check_error(WAYS[way](structures, np.ones(3)), "trees", "different structures")


def test_python_control_flow_on_traced_data_points_to_cond_and_scan() -> None:
    def f(x: np.ndarray) -> Any:
        if x.sum() > 0:  # branch
            return x
        return -x

    check_error(traced(f, np.ones(2)), "branch", "gc.cond", "gc.scan", error=gc.TracingError)
    check_error(
        lambda: gc.grad(lambda x: f(x).sum())(np.ones(2)),
        "branch",
        "gc.cond",
        error=gc.TracingError,
    )


def test_type_rules_reject_bad_bodies_with_clear_messages() -> None:
    body = GraphBuilder("body")
    c = body.input(TensorType((2,), f64), "c")
    x = body.input(TensorType((2,), f64), "x")
    good = body.build([body.add(c, x)])
    b = GraphBuilder("f")
    c0, xs = b.input(TensorType((2,), f64), "c0"), b.input(TensorType((3, 2), f64), "xs")
    attrs = {"length": 3, "num_carry": 1, "num_xs": 1, "num_consts": 0}
    cases = [
        ((c0, xs), {**attrs, "length": 4}, "sliced operand 0 is f64[3,2]"),
        ((c0, xs), {**attrs, "num_consts": 1}, "must add up to the 2 operand(s)"),
        ((xs, c0), {**attrs, "length": 2}, "argument 0 of the scan body is f64[2]"),
        ((c0, xs, c0), {**attrs, "num_consts": 1}, "takes 2 argument(s)"),
    ]
    for operands, given, phrase in cases:
        with pytest.raises(OpTypeError, match=r"^scan: ") as info:
            b.scan(*operands, subgraphs=[good], **given)
        assert phrase in str(info.value), str(info.value)
    wide = GraphBuilder("body")
    c, x = wide.input(TensorType((2,), f64), "c"), wide.input(TensorType((2,), f64), "x")
    with pytest.raises(OpTypeError, match="first 1 result"):
        b.scan(c0, xs, subgraphs=[wide.build([wide.cast(c, dtype=f32)])], **attrs)
    p, k = b.input(TensorType((), i64), "p"), b.input(TensorType((2,), f64), "k")
    branch = GraphBuilder("branch")
    branch_out = branch.neg(branch.input(TensorType((2,), f64), "a"))
    with pytest.raises(OpTypeError, match=r"cond: the predicate must be a bool scalar.*i64"):
        b.cond(p, k, subgraphs=[branch.build([branch_out])] * 2)

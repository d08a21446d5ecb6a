"""OpDef.infer remembers type-rule results: the same answers as the rule itself."""

from __future__ import annotations

import numpy as np
import pytest

from graphc.ir import DType, GraphBuilder, OpTypeError, TensorType, f32, get_op


def test_remembered_results_are_the_rules_own() -> None:
    op = get_op("reduce_sum")
    t = TensorType((3, 4), DType.f32)
    for axes, shape in (((0,), (4,)), ((1,), (3,)), ((0, 1), ())):
        attrs = op.normalize_attrs({"axes": axes})
        first = op.infer((t,), attrs)
        assert first == (TensorType(shape, DType.f32),)
        assert op.infer((t,), attrs) == first == (op.type_rule(t, **attrs),)


def test_a_rule_that_fails_fails_every_time() -> None:
    op = get_op("add")
    bad = (TensorType((3,), DType.f32), TensorType((4,), DType.f32))
    for _ in range(2):
        with pytest.raises(OpTypeError):
            op.infer(bad, {})


def test_array_attributes_are_inferred_without_being_remembered() -> None:
    b = GraphBuilder("f")
    x = b.input(f32[2], "x")
    c = np.array([1.0, 2.0], np.float32)
    for _ in range(2):
        assert b.add(x, b.constant(value=c)).type == TensorType((2,), DType.f32)

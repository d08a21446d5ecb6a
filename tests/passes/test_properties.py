"""Every pass, and the whole pipeline, preserves meaning on random graphs:
``interpret(p(g))`` equals ``interpret(g)`` (NaN, inf and signed zeros in the
same places, other values close) and ``verify(p(g))`` passes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphc.ir import Graph, parse, verify
from graphc.passes import (
    eliminate_common_subexpressions,
    eliminate_dead_code,
    fold_constants,
    optimize,
    simplify,
)
from tests.passes.helpers import check_same_meaning, random_inputs
from tests.passes.rule_graphs import rule_graphs
from tests.strategies import graphs_with_inputs

PASSES: dict[str, Callable[[Graph], Graph]] = {
    "fold_constants": fold_constants,
    "simplify": simplify,
    "eliminate_common_subexpressions": eliminate_common_subexpressions,
    "eliminate_dead_code": eliminate_dead_code,
    "optimize": lambda g: optimize(g)[0],
}

RELAXED = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def check_preserves(p: Callable[[Graph], Graph], g: Graph, arrays: list[np.ndarray]) -> None:
    out = p(g)
    verify(out)
    assert parse(str(out)) == out
    check_same_meaning(g, out, arrays)


@pytest.mark.parametrize("name", PASSES)
@RELAXED
@given(case=graphs_with_inputs(special=True, special_inputs=True))
def test_pass_preserves_meaning_on_random_graphs(
    name: str, case: tuple[Graph, tuple[np.ndarray, ...]]
) -> None:
    g, arrays = case
    check_preserves(PASSES[name], g, list(arrays))


@pytest.mark.parametrize("name", PASSES)
@RELAXED
@given(g=rule_graphs(), seed=st.integers(0, 2**16))
def test_pass_preserves_meaning_on_rewritable_graphs(name: str, g: Graph, seed: int) -> None:
    check_preserves(PASSES[name], g, random_inputs(g, seed))


@RELAXED
@given(g=rule_graphs())
def test_optimize_reaches_a_fixed_point(g: Graph) -> None:
    once, _ = optimize(g)
    twice, report = optimize(once)
    assert twice == once
    assert not any(k for k in report.counts if k not in ("removed", "merged", "folded"))

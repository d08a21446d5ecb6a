"""The examples in the passes' and the NumPy backend's docstrings run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "graphc.passes.manager",
    "graphc.passes.pipeline",
    "graphc.passes.rewrite",
    "graphc.passes.fold",
    "graphc.passes.simplify",
    "graphc.passes.facts",
    "graphc.passes.cse",
    "graphc.passes.dce",
    "graphc.passes.plan_memory",
    "graphc.passes.recompute_results",
    "graphc.backends",
    "graphc.backends.numpy",
    "graphc.backends.numpy.executable",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0

"""The examples in the LLVM backend's docstrings (and the fusion pass's) run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "graphc.backends.llvm",
    "graphc.backends.llvm.profile",
    "graphc.passes.fuse",
]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0

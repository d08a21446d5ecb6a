"""Every docstring example in graphc (ir, passes, backends, API) runs as written."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest


def all_modules() -> list[str]:
    # graphc.ir and graphc.backends live in their own top-level folders.
    import graphc.backends
    import graphc.ir

    names = {"graphc", "graphc.ir", "graphc.backends"}
    for package in (graphc, graphc.ir, graphc.backends):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            names.add(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", all_modules())
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} failing example(s) in {name}"

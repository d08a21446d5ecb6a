"""Every registered op has a lowering or a decomposition in every backend."""

from __future__ import annotations

import pytest

from graphc.backends import backend_names, get_backend
from graphc.ir import UnsupportedError, all_ops


@pytest.mark.parametrize("name", backend_names())
def test_every_op_has_a_lowering_or_a_decomposition(name: str) -> None:
    backend = get_backend(name)
    lowered, decomposed = set(backend.LOWERINGS), set(backend.DECOMPOSITIONS)
    missing = sorted(op for op in all_ops() if op not in lowered | decomposed)
    assert not missing, f"backend '{name}' has neither a lowering nor a decomposition for {missing}"


@pytest.mark.parametrize("name", backend_names())
def test_tables_name_only_registered_ops(name: str) -> None:
    backend = get_backend(name)
    unknown = (set(backend.LOWERINGS) | set(backend.DECOMPOSITIONS)) - set(all_ops())
    assert not unknown, f"backend '{name}' lowers ops that are not registered: {sorted(unknown)}"


@pytest.mark.parametrize("name", backend_names())
def test_backend_module_protocol(name: str) -> None:
    backend = get_backend(name)
    assert callable(backend.compile)
    assert backend is get_backend(name)


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(UnsupportedError, match="numpy"):
        get_backend("cuda")

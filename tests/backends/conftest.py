"""Fixtures shared by the backend tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from graphc.backends.llvm import cache as cache_mod


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh, empty disk cache for one test (no size limit, dump or verify
    settings from the environment); its one-time warnings are re-armed."""
    path = tmp_path / "cache"
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(path))
    monkeypatch.delenv("GRAPHC_CACHE_MAX_MB", raising=False)
    monkeypatch.delenv("GRAPHC_DUMP", raising=False)
    monkeypatch.delenv("GRAPHC_VERIFY", raising=False)
    cache_mod._reported.clear()
    yield path
    cache_mod._reported.clear()

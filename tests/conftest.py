"""Shared pytest configuration: hypothesis profiles.

Profiles:
- ``default``: few examples, no deadline (tests build graphs, whose first
  call pays import and cache costs that a deadline would misread as slowness);
- ``ci``: selected when ``CI=true``; as small as ``default`` and derandomized,
  so a CI failure reproduces on every run;
- ``nightly``: many examples, selected with ``HYPOTHESIS_PROFILE=nightly``.

``HYPOTHESIS_PROFILE`` always wins over ``CI``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large]

# Hypothesis loads its own "ci" settings under CI; derandomize is spelled out
# so that "default" and "nightly" stay random there too.
settings.register_profile("default", max_examples=25, deadline=None, derandomize=False)
settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=_SLOW_DATA,
)
settings.register_profile(
    "nightly",
    max_examples=1000,
    deadline=None,
    derandomize=False,
    suppress_health_check=_SLOW_DATA,
)


def _profile_name() -> str:
    chosen = os.environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        return "ci"
    return "default"


settings.load_profile(_profile_name())


@pytest.fixture(scope="module")
def private_llvm_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A disk cache for compiled LLVM objects private to one test module, so
    tests neither read a user's cache nor leave entries in it. Use it with
    ``pytestmark = pytest.mark.usefixtures("private_llvm_cache")``."""
    path = tmp_path_factory.mktemp("llvm_cache")
    saved = os.environ.get("GRAPHC_CACHE_DIR")
    os.environ["GRAPHC_CACHE_DIR"] = str(path)
    yield path
    if saved is None:
        del os.environ["GRAPHC_CACHE_DIR"]
    else:
        os.environ["GRAPHC_CACHE_DIR"] = saved

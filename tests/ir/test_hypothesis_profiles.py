"""The hypothesis profile is chosen from the environment (see tests/conftest.py)."""

from __future__ import annotations

import pytest
from hypothesis import settings

from tests.conftest import _profile_name


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "default"),
        ({"CI": "true"}, "ci"),
        ({"CI": "True"}, "ci"),
        ({"CI": "false"}, "default"),
        ({"HYPOTHESIS_PROFILE": "nightly"}, "nightly"),
        ({"CI": "true", "HYPOTHESIS_PROFILE": "nightly"}, "nightly"),
    ],
)
def test_profile_selection(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert _profile_name() == expected


def test_profiles() -> None:
    default, ci, nightly = (settings.get_profile(n) for n in ("default", "ci", "nightly"))
    assert default.deadline is None and ci.deadline is None and nightly.deadline is None
    assert ci.derandomize and not default.derandomize
    assert ci.max_examples <= default.max_examples < nightly.max_examples

"""README.md's code runs as written: every ```python block, each in a fresh
namespace in a scratch directory, and the IR it shows for the intro's loss is
what ``print(g)`` prints. Blocks that are not meant to run are fenced
otherwise (```sh, ```text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def fenced_blocks(text: str) -> list[tuple[str, int, str]]:
    """(info string, line of the first code line, code) for each fenced block.

    >>> fenced_blocks("a\\n```python\\nx = 1\\n```\\n```\\ny\\n```\\n")
    [('python', 3, 'x = 1\\n'), ('', 6, 'y\\n')]
    """
    blocks = []
    info: str | None = None
    start, lines = 0, []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if info is None:
            if stripped.startswith("```"):
                info, start, lines = stripped[3:].strip(), number + 1, []
        elif stripped == "```":
            blocks.append((info, start, "".join(f"{x}\n" for x in lines)))
            info = None
        else:
            lines.append(line)
    assert info is None, f"README.md: the block opened at line {start - 1} is never closed"
    return blocks


def python_blocks() -> list[tuple[int, str]]:
    return [
        (start, code) for info, start, code in fenced_blocks(README.read_text()) if info == "python"
    ]


def run_block(start: int, code: str) -> dict[str, Any]:
    # Padded so that a traceback names the README's own line numbers.
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(compile("\n" * (start - 1) + code, str(README), "exec"), namespace)
    return namespace


@pytest.fixture
def scratch(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    """Blocks write files (checkpoints, plots) where they run, and compile into a private cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_the_readme_has_python_blocks() -> None:
    assert len(python_blocks()) >= 1


@pytest.mark.parametrize(
    ("start", "code"),
    [pytest.param(start, code, id=f"README.md:{start}") for start, code in python_blocks()],
)
def test_python_block_runs(scratch, start: int, code: str) -> None:  # noqa: ANN001
    # A bare `...` runs (it is Ellipsis) but leaves the example unfinished.
    placeholders = [start + k for k, line in enumerate(code.splitlines()) if line.strip() == "..."]
    assert not placeholders, f"README.md:{placeholders[0]}: finish the example or fence it as text"
    run_block(start, code)


def test_the_ir_shown_is_the_intro_loss_printed(scratch) -> None:  # noqa: ANN001
    start, code = python_blocks()[0]
    g = run_block(start, code)["g"]
    shown = [text for info, _, text in fenced_blocks(README.read_text()) if info == "text"]
    assert str(g) + "\n" in shown, (
        "README.md's IR block is not what print(g) prints for the intro's loss; it prints:\n"
        + str(g)
    )

"""The install lists every package, and the `graphc` command works on dumped IR."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import graphc as gc
from graphc.cli import main

ROOT = Path(__file__).resolve().parent.parent
PREFIXES = {"graphc": "graphc", "ir": "graphc.ir", "backends": "graphc.backends"}


def test_every_package_directory_is_installed():
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^packages = \[(.*?)\]", text, re.S | re.M)
    assert block is not None
    listed = set(re.findall(r'"([\w.]+)"', block.group(1)))
    found = set()
    for top, name in PREFIXES.items():
        for init in (ROOT / top).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *parts)))
    assert found == listed


def test_unknown_or_missing_backends_are_clear_errors():
    from graphc.backends import get_backend, register_backend

    register_backend("ghost", "graphc.backends.no_such_module")
    try:
        try:
            get_backend("ghost")
        except gc.UnsupportedError as exc:
            assert "unavailable" in str(exc)
        else:
            raise AssertionError("expected UnsupportedError")
    finally:
        from graphc.backends import BACKENDS

        del BACKENDS["ghost"]


def dumped(tmp_path):
    gc.jit(lambda x: np.sum(np.exp(x) * 1.0), backend="numpy", dump=tmp_path)(np.ones(3))
    return sorted(tmp_path.glob("*.gir"))


def test_cli_check_print_dot_optimize(tmp_path, capsys):
    first = str(dumped(tmp_path)[0])
    assert main(["check", first]) == 0
    assert capsys.readouterr().out.startswith("ok: graph lambda, 1 input")
    assert main(["print", first]) == 0
    text = capsys.readouterr().out
    assert gc.ir.parse(text) == gc.ir.parse(Path(first).read_text())
    out = tmp_path / "g.dot"
    assert main(["dot", first, "-o", str(out)]) == 0
    assert out.read_text().startswith('digraph "lambda"')
    assert main(["optimize", first, "--backend", "llvm", "--report"]) == 0
    captured = capsys.readouterr()
    assert "fusion" in captured.out and "simplify" in captured.err
    assert (
        main(["optimize", first, "--disable", "simplify", "--disable", "simplify_after_cse"]) == 0
    )
    assert "mul" in capsys.readouterr().out  # x * 1.0 survives without simplify


def test_cli_reports_bad_files_with_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.gir"
    bad.write_text("graph f(%x: f32[2]) -> (f32[2]) {\n  %0 = exp %y : f32[2]\n  return %0\n}\n")
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "undefined value %y" in err and "line 2" in err
    assert main(["check", str(tmp_path / "missing.gir")]) == 1


def test_console_script_runs():
    done = subprocess.run(
        [sys.executable, "-m", "graphc.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "check" in done.stdout and "optimize" in done.stdout

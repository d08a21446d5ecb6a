"""The graphc command behaves like a Unix tool: quiet when its reader goes away,
plain-text help, and a clear word on files it cannot read."""

from __future__ import annotations

import subprocess
import sys

import pytest

from graphc.cli import BROKEN_PIPE_STATUS, main
from graphc.ir import GraphBuilder, f32


def long_ir_file(tmp_path):
    # Far more text than a pipe buffer holds, so writing blocks and then fails.
    b = GraphBuilder("chain")
    x = b.input(f32[4], "x")
    for _ in range(3000):
        x = b.exp(x)
    path = tmp_path / "chain.gir"
    path.write_text(str(b.build([x])))
    return path


def test_closed_pipe_is_a_quiet_exit(tmp_path):
    path = long_ir_file(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphc", "print", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does after its line
    err = proc.stderr.read().decode()
    status = proc.wait(timeout=120)
    assert first.startswith(b"graph chain(")
    assert err == ""
    assert status == BROKEN_PIPE_STATUS


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in ("report", "render", "dump", "bench", "check", "optimize"):
        assert command in text
    assert "``" not in text and "::" not in text and ":func:" not in text
    assert "example_inputs()" in text


def test_python_file_without_the_convention_says_how(tmp_path, capsys):
    script = tmp_path / "model.py"
    script.write_text("import numpy as np\n\ndef loss(x):\n    return np.sum(x * x)\n")
    assert main(["check", str(script)]) == 1
    err = capsys.readouterr().err
    assert "example_inputs()" in err and "unexpected character" not in err


def test_python_file_with_the_convention_is_checked(tmp_path, capsys):
    script = tmp_path / "model.py"
    script.write_text(
        "import numpy as np\n\n"
        "def loss(x):\n    return np.sum(np.exp(x))\n\n"
        "def example_inputs():\n    return {'loss': (np.ones(3),)}\n"
    )
    assert main(["check", str(script)]) == 0
    assert capsys.readouterr().out.startswith("ok: graph loss, 1 input, 2 nodes")
    assert main(["check", f"{script}:nope"]) == 1
    assert "no entry 'nope'" in capsys.readouterr().err

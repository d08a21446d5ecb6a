"""Run a script of tests/distributed/scripts under ``mpiexec`` (the one the
mpi extra installs beside this Python), with a hard timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).parent / "scripts"


def mpiexec() -> str:
    found = Path(sys.executable).parent / "mpiexec"
    assert found.exists(), "mpiexec is missing: install graphc[mpi] (mpi4py and mpich)"
    return str(found)


def run_mpi(
    script: str, *args: str, n: int = 2, timeout: float = 60.0, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``scripts/<script>`` on ``n`` ranks; returns the finished process and
    its wall time. A run over ``timeout`` seconds fails the test (a hang)."""
    full_env = dict(os.environ)
    # Two ranks share this machine's cores: one thread each.
    full_env.update({"GRAPHC_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    full_env.update(env or {})
    cmd = [mpiexec(), "-n", str(n), sys.executable, str(SCRIPTS / script), *args]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
    return proc, time.monotonic() - start

"""Data-parallel training under ``mpiexec -n 2``, launched as subprocesses.

Each test runs a script from ``scripts/`` on two ranks; the scripts assert
against single-process references themselves, and rank-to-rank bitwise
equality, and print ``rank R ok`` on success.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .mpirun import run_mpi


def _ok(proc: object, what: str) -> None:
    out = f"{proc.stdout}\n{proc.stderr}"  # type: ignore[attr-defined]
    assert proc.returncode == 0, out  # type: ignore[attr-defined]
    for rank in (0, 1):
        assert f"rank {rank} ok{what}" in proc.stdout, out  # type: ignore[attr-defined]


def test_all_reduce_on_two_ranks_both_backends() -> None:
    proc, _ = run_mpi("collectives.py")
    _ok(proc, "")


def test_data_parallel_step_matches_double_batch_llvm() -> None:
    proc, _ = run_mpi("step.py", "llvm")
    _ok(proc, " llvm")
    _ok(proc, " llvm bf16")
    _ok(proc, " llvm overlap")


@pytest.mark.slow
def test_data_parallel_step_matches_double_batch_numpy() -> None:
    proc, _ = run_mpi("step.py", "numpy")
    _ok(proc, " numpy")
    _ok(proc, " numpy bf16")
    _ok(proc, " numpy overlap")


def test_batchnorm_sync_and_local_statistics() -> None:
    proc, _ = run_mpi("batchnorm.py")
    _ok(proc, " bn")


def test_fit_shards_checkpoints_and_resumes(tmp_path: Path) -> None:
    proc, _ = run_mpi("fit.py", str(tmp_path))
    _ok(proc, " fit")


def test_killed_rank_ends_the_run() -> None:
    proc, seconds = run_mpi("failure.py", "kill", env={"GRAPHC_DIST_TIMEOUT": "20"})
    assert proc.returncode != 0
    assert "finished" not in proc.stdout
    assert seconds < 20, "the launcher, not the watchdog, should end the run"


def test_graph_mismatch_is_reported_at_the_first_step() -> None:
    proc, _ = run_mpi("failure.py", "mismatch", env={"GRAPHC_DIST_TIMEOUT": "20"})
    assert proc.returncode != 0
    assert "DistributedError: the traced train step differs between ranks" in proc.stderr
    assert "finished" not in proc.stdout


@pytest.mark.slow
def test_unequal_batches_are_reported() -> None:
    proc, _ = run_mpi("failure.py", "shapes", env={"GRAPHC_DIST_TIMEOUT": "20"})
    assert proc.returncode != 0
    assert "differs between ranks" in proc.stderr


@pytest.mark.slow
def test_raising_rank_aborts_the_others() -> None:
    proc, seconds = run_mpi("failure.py", "raise", env={"GRAPHC_DIST_TIMEOUT": "20"})
    assert proc.returncode != 0
    assert "rank 1 raised RuntimeError; ending all 2 ranks" in proc.stderr
    assert seconds < 20


@pytest.mark.slow
def test_hung_rank_trips_the_watchdog() -> None:
    proc, _ = run_mpi("failure.py", "hang", env={"GRAPHC_DIST_TIMEOUT": "3"})
    assert proc.returncode != 0
    assert "waited more than 3 s in a data-parallel train step" in proc.stderr

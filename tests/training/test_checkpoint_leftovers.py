"""A process killed while saving a checkpoint leaves a full-size temporary file;
the next save or load of that checkpoint removes it, and only it: temporaries
of saves still running and of other checkpoints stay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import graphc.checkpoint as ckpt

# Saves a checkpoint but stops forever once the data is written, before the rename.
WRITER = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import graphc.checkpoint as ckpt

    def stall(fd):
        print("written", flush=True)
        time.sleep(600)

    os.fsync = stall
    ckpt.save(sys.argv[1], {"w": np.ones(20_000)})
    """
)


def start_writer(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "written\n"
    return proc


@pytest.fixture
def writer() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def temporaries(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.tmp"))


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()  # reaped: its pid no longer names a process


TREE = {"w": np.arange(6.0)}


def test_a_killed_save_leaves_a_temporary_the_next_access_removes(
    tmp_path: Path, writer: list[subprocess.Popen[str]]
) -> None:
    path = tmp_path / "run.npz"
    ckpt.save(path, TREE, metadata={"epoch": 1})
    proc = start_writer(path)
    writer.append(proc)
    kill(proc)
    (left,) = temporaries(tmp_path)
    assert left.name.startswith(".run.npz.") and left.stat().st_size > 20_000 * 8
    data = left.read_bytes()
    # Each way in cleans up; the leftover is put back (same name: the same dead
    # writer) before the next.
    for then in ("read_metadata", "restore", "save"):
        left.write_bytes(data)
        if then == "read_metadata":
            assert ckpt.read_metadata(path) == {"epoch": 1}
        elif then == "restore":
            np.testing.assert_array_equal(ckpt.restore(path, like=TREE)["w"], TREE["w"])
        else:
            ckpt.save(path, TREE, metadata={"epoch": 2})
            assert ckpt.read_metadata(path) == {"epoch": 2}
        assert temporaries(tmp_path) == [], then


def test_a_save_still_running_keeps_its_temporary(
    tmp_path: Path, writer: list[subprocess.Popen[str]]
) -> None:
    path = tmp_path / "run.npz"
    proc = start_writer(path)
    writer.append(proc)
    (live,) = temporaries(tmp_path)
    ckpt.save(path, TREE)
    assert ckpt.restore(path, like=TREE)["w"].tolist() == TREE["w"].tolist()
    assert temporaries(tmp_path) == [live]
    kill(proc)
    ckpt.restore(path, like=TREE)
    assert temporaries(tmp_path) == []


def test_only_this_checkpoints_stale_temporaries_go(tmp_path: Path) -> None:
    path = tmp_path / "run.npz"
    tag = ckpt._writer_tag().rsplit("-", 1)[0]
    dead = 2**22 + 12345  # above Linux's largest pid, so never a live process
    others = [
        f".run.npz.bak.{tag}-{dead}.abcd1234.tmp",  # a checkpoint named run.npz.bak
        f".other.npz.{tag}-{dead}.abcd1234.tmp",
        ".run.npz.recent12.tmp",  # no writer named, and written just now
        f".run.npz.{tag}-{os.getpid()}.abcd1234.tmp",  # a live writer: this process
        f".run.npz.otherhost-{dead}.abcd1234.tmp",  # another host's writer, recent
    ]
    stale = [f".run.npz.{tag}-{dead}.abcd1234.tmp", ".run.npz.old12345.tmp"]
    for name in others + stale:
        (tmp_path / name).write_bytes(b"x" * 100)
    os.utime(tmp_path / ".run.npz.old12345.tmp", (1000.0, 1000.0))
    ckpt.save(path, TREE)
    assert sorted(p.name for p in temporaries(tmp_path)) == sorted(others)

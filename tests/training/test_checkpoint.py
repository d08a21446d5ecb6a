"""Checkpoints: bitwise round trips, atomic writes, and clear errors that touch nothing."""

from __future__ import annotations

import collections
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graphc.checkpoint as ckpt
import graphc.nn as nn
import graphc.optim as optim
import graphc.random as grandom
from graphc import GraphcError
from graphc.pytree import tree_flatten

Point = collections.namedtuple("Point", ["x", "y"])


def _training_state(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    params = {"l1": nn.Linear(4, 8).init(rng), "l2": nn.Linear(8, 3).init(rng)}
    opt = optim.Adam(1e-3)
    state = opt.init(params)
    grads = {k: {n: rng.normal(size=v.shape).astype(v.dtype) for n, v in p.items()}
             for k, p in params.items()}  # fmt: skip
    params, state = opt.update(grads, state, params)
    return {
        "params": params,
        "opt": state,
        "step": np.int64(1),
        "key": grandom.key(1234),
        "extras": [Point(np.arange(3, dtype=np.int32), np.array([True, False])), None, (2.5, 7)],
        "special": np.array([np.nan, np.inf, -0.0, 1e-310]),
    }


def _assert_bitwise_equal(a: Any, b: Any) -> None:
    a_leaves, a_def = tree_flatten(a)
    b_leaves, b_def = tree_flatten(b)
    assert a_def == b_def
    for x, y in zip(a_leaves, b_leaves):
        assert type(x) is type(y) or (isinstance(x, np.generic | np.ndarray))
        xa, ya = np.asarray(x), np.asarray(y)
        assert xa.dtype == ya.dtype and xa.shape == ya.shape
        assert xa.tobytes() == ya.tobytes()


def test_round_trip_is_bitwise_with_template(tmp_path: Path) -> None:
    state = _training_state()
    path = tmp_path / "run.npz"
    ckpt.save(path, state, metadata={"epoch": 4, "note": "best"})
    restored = ckpt.restore(path, like=state)
    _assert_bitwise_equal(restored, state)
    assert isinstance(restored["extras"][0], Point)
    assert restored["extras"][2] == (2.5, 7) and type(restored["extras"][2][1]) is int
    assert ckpt.read_metadata(path) == {"epoch": 4, "note": "best"}


def test_round_trip_without_template_rebuilds_the_structure(tmp_path: Path) -> None:
    state = _training_state()
    path = tmp_path / "run.npz"
    ckpt.save(path, state)
    restored = ckpt.restore(path)
    assert restored["extras"][0]._fields == ("x", "y")
    np.testing.assert_array_equal(restored["params"]["l1"]["w"], state["params"]["l1"]["w"])
    assert restored["extras"][1] is None
    assert ckpt.read_metadata(path) == {}


def test_template_may_hold_shape_dtype_descriptions(tmp_path: Path) -> None:
    class Spec:
        def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
            self.shape, self.dtype = shape, dtype

    path = tmp_path / "c.npz"
    ckpt.save(path, {"w": np.ones((2, 3), np.float32)})
    out = ckpt.restore(path, like={"w": Spec((2, 3), np.float32)})
    np.testing.assert_array_equal(out["w"], np.ones((2, 3), np.float32))


def test_file_is_a_plain_npz_loadable_without_pickle(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    ckpt.save(path, {"w": np.arange(4.0)})
    with np.load(path, allow_pickle=False) as archive:
        assert "leaf_0" in archive.files
        np.testing.assert_array_equal(archive["leaf_0"], np.arange(4.0))
    assert zipfile.is_zipfile(path)


def _dir_listing(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def test_failure_mid_write_leaves_the_old_file_and_no_temporaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.npz"
    ckpt.save(path, {"w": np.zeros(3)})
    before = _dir_listing(tmp_path)
    real_savez = np.savez

    def savez_then_fail(file: Any, **arrays: Any) -> None:
        real_savez(file, **arrays)  # bytes reach the temporary file...
        raise OSError(28, "No space left on device")  # ...then the disk fills up

    monkeypatch.setattr(ckpt.np, "savez", savez_then_fail)
    with pytest.raises(ckpt.CheckpointError, match="No space left"):
        ckpt.save(path, {"w": np.ones(3)})
    assert _dir_listing(tmp_path) == before
    monkeypatch.undo()
    np.testing.assert_array_equal(ckpt.restore(path)["w"], np.zeros(3))


def test_failure_at_rename_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.npz"
    ckpt.save(path, {"w": np.zeros(3)})
    before = _dir_listing(tmp_path)

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(ckpt.os, "replace", failing_replace)
    with pytest.raises(ckpt.CheckpointError, match="Input/output"):
        ckpt.save(path, {"w": np.ones(3)})
    assert _dir_listing(tmp_path) == before


def test_interrupt_during_write_cleans_up_and_propagates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.npz"
    ckpt.save(path, {"w": np.zeros(3)})
    before = _dir_listing(tmp_path)

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save(path, {"w": np.ones(3)})
    assert _dir_listing(tmp_path) == before


def test_unsavable_trees_fail_before_touching_disk(tmp_path: Path) -> None:
    path = tmp_path / "run.npz"
    ckpt.save(path, {"w": np.zeros(3)})
    before = _dir_listing(tmp_path)
    for bad_tree, metadata, message in [
        ({"w": np.array(["a", "b"])}, None, "dtype"),
        ({"w": np.array([object()])}, None, "dtype"),
        ({"w": np.zeros(2)}, {"when": object()}, "JSON"),
        ({("tuple", "key"): np.zeros(2)}, None, "dict key"),
    ]:
        with pytest.raises(ckpt.CheckpointError, match=message):
            ckpt.save(path, bad_tree, metadata=metadata)
    assert _dir_listing(tmp_path) == before
    with pytest.raises(ckpt.CheckpointError, match="does not exist"):
        ckpt.save(tmp_path / "missing_dir" / "x.npz", {"w": np.zeros(1)})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ckpt.CheckpointNotFoundError, match="no file") as info:
        ckpt.restore(tmp_path / "absent.npz", like={"w": np.zeros(1)})
    assert isinstance(info.value, GraphcError) and isinstance(info.value, FileNotFoundError)
    assert list(tmp_path.iterdir()) == []


def _corruptions(good: bytes) -> dict[str, bytes]:
    middle = len(good) // 2
    flipped = bytearray(good)
    flipped[middle] ^= 0xFF
    return {
        "empty": b"",
        "truncated": good[: len(good) // 3],
        "flipped_byte": bytes(flipped),
        "text": b"this is not a checkpoint\n" * 10,
        "pickle": b"\x80\x04\x95" + b"\x00" * 40,
    }


@pytest.mark.parametrize("kind", ["empty", "truncated", "flipped_byte", "text", "pickle"])
def test_corrupt_files_raise_and_are_left_alone(tmp_path: Path, kind: str) -> None:
    state = {"w": np.arange(600.0), "b": np.ones(5, np.float32)}
    path = tmp_path / "run.npz"
    ckpt.save(path, state)
    path.write_bytes(_corruptions(path.read_bytes())[kind])
    before = _dir_listing(tmp_path)
    with pytest.raises(ckpt.CheckpointError):
        ckpt.restore(path, like=state)
    with pytest.raises(ckpt.CheckpointError):
        ckpt.read_metadata(path)
    assert _dir_listing(tmp_path) == before


def test_foreign_archives_are_rejected(tmp_path: Path) -> None:
    plain_npz = tmp_path / "plain.npz"
    np.savez(plain_npz, w=np.zeros(2))
    with pytest.raises(ckpt.CheckpointError, match="__graphc__"):
        ckpt.restore(plain_npz)
    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros(2))
    with pytest.raises(ckpt.CheckpointError, match="not an .npz"):
        ckpt.restore(npy)


def test_mismatches_are_listed_with_paths(tmp_path: Path) -> None:
    state = _training_state()
    path = tmp_path / "run.npz"
    ckpt.save(path, state)
    before = _dir_listing(tmp_path)

    wrong = _training_state()
    wrong["params"]["l1"]["w"] = np.zeros((4, 9), np.float32)
    wrong["step"] = np.int32(1)
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.restore(path, like=wrong)
    message = str(info.value)
    assert "['params']['l1']['w']: file has float32[4, 8], expected float32[4, 9]" in message
    assert "['step']: file has int64[], expected int32[]" in message

    missing_key = _training_state()
    del missing_key["opt"]["v"]
    expected = r"\['opt'\]: keys differ \(missing \[\], unexpected \['v'\]"
    with pytest.raises(ckpt.CheckpointError, match=expected):
        ckpt.restore(path, like=missing_key)

    shorter = _training_state()
    shorter["extras"] = shorter["extras"][:2]
    with pytest.raises(ckpt.CheckpointError, match="expected a list of length 2"):
        ckpt.restore(path, like=shorter)

    other_tuple = _training_state()
    other_tuple["extras"][0] = (np.arange(3, dtype=np.int32), np.array([True, False]))
    with pytest.raises(ckpt.CheckpointError, match="file has a namedtuple, expected a tuple"):
        ckpt.restore(path, like=other_tuple)
    assert _dir_listing(tmp_path) == before


def test_resume_continues_bitwise_like_an_uninterrupted_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=16)
    layer = nn.Linear(4, 3)
    opt = optim.AdamW(optim.warmup_cosine(0.05, 2, 8))

    def step(params: Any, state: Any, key: Any) -> tuple[Any, Any]:
        # A numerical gradient stand-in keeps this test independent of autodiff:
        # it is a deterministic function of the parameters and the dropout mask.
        h = nn.dropout(x, 0.2, key=key, step=state["step"])
        logits = layer(params, h)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(16), y] -= 1
        grads = {"w": h.T @ p / 16, "b": p.mean(axis=0)}
        return opt.update(grads, state, params)

    def run(params: Any, state: Any, key: Any, steps: int) -> tuple[Any, Any]:
        for _ in range(steps):
            params, state = step(params, state, key)
        return params, state

    key = grandom.key(99)
    params0 = layer.init(0)
    straight = run(params0, opt.init(params0), key, 6)

    half = run(params0, opt.init(params0), key, 3)
    path = tmp_path / "ckpt.npz"
    ckpt.save(path, {"params": half[0], "opt": half[1], "key": key})
    template = {"params": params0, "opt": opt.init(params0), "key": key}
    loaded = ckpt.restore(path, like=template)
    resumed = run(loaded["params"], loaded["opt"], loaded["key"], 3)
    _assert_bitwise_equal(resumed, straight)


def test_overwrite_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "run.npz"
    ckpt.save(path, {"w": np.zeros(3)}, metadata={"v": 1})
    ckpt.save(os.fspath(path), {"w": np.ones(3)}, metadata={"v": 2})
    assert ckpt.read_metadata(path) == {"v": 2}
    np.testing.assert_array_equal(ckpt.restore(path)["w"], np.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]

"""The disk cache: warm starts that skip the pipeline, what the keys depend on,
a private directory, and the size cap (the object cache itself: test_llvm_runtime)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm import cache as cache_mod
from graphc.compiler import compile_graph
from graphc.ir import interpret

pytestmark = pytest.mark.usefixtures("private_cache")


def mlp_loss(w1, w2, x):  # noqa: ANN001, ANN201
    h = np.tanh(x @ w1)
    return (h @ w2).sum() * 0.5 + (w1 * w1).sum()


def traced(scale: float = 1.0):  # noqa: ANN201
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((5, 7)).astype(np.float32)
    w2 = rng.standard_normal((7, 3)).astype(np.float32)
    x = rng.standard_normal((4, 5)).astype(np.float32) * scale
    return gc.trace(gc.value_and_grad(mlp_loss, argnums=(0, 1)), w1, w2, x), (w1, w2, x)


def compile_llvm(g, **kwargs):  # noqa: ANN001, ANN003, ANN201
    return compile_graph(g, backend="llvm", **kwargs)


def entries(directory: Path, suffix: str) -> list[Path]:
    return sorted(directory.glob(f"*{suffix}"))


# -- the pipeline's entries ------------------------------------------------------------


def test_second_compile_loads_the_pipeline_result_and_the_object(private_cache) -> None:  # noqa: ANN001
    g, args = traced()
    first = compile_llvm(g)
    assert not first.report.from_cache and not first.executable.from_cache
    assert len(entries(private_cache, ".gcp")) == 1
    second = compile_llvm(traced()[0])
    assert second.report.from_cache and second.executable.from_cache
    assert "loaded from the disk cache" in str(second.report)
    assert second.graph.format(locations=True) == first.graph.format(locations=True)
    assert [p.name for p in second.report.passes] == [p.name for p in first.report.passes]
    assert second.memory.arena_bytes == first.memory.arena_bytes
    want = interpret(g, *args)
    for a, b, w in zip(first.executable(*args), second.executable(*args), want):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "change",
    [
        {"disable_passes": ("simplify",)},
        {"donate": (0,)},
        {"memory_budget": 1 << 30},
        {"options": {"threads": 1}},
        {"options": {"parallel_work": 7}},
    ],
    ids=["disabled", "donate", "budget", "threads", "parallel_work"],
)
def test_any_change_of_option_misses(change) -> None:  # noqa: ANN001
    g, args = traced()
    base = compile_llvm(g)
    other = compile_llvm(traced()[0], **change)
    assert not other.report.from_cache
    for a, b in zip(base.executable(*args), other.executable(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert compile_llvm(traced()[0], **change).report.from_cache


def test_a_different_graph_or_source_line_misses() -> None:
    g, _ = traced()
    compile_llvm(g)
    b = gc.ir.GraphBuilder("f")
    x = b.input(gc.ir.f32[3], "x")
    assert not compile_llvm(b.build([b.exp(x)])).report.from_cache
    # The same ops traced from another line: its error messages name that line.
    moved = gc.trace(gc.value_and_grad(lambda w1, w2, x: mlp_loss(w1, w2, x)), *traced()[1])
    assert str(moved) != str(g) or moved.format(locations=True) != g.format(locations=True)
    assert not compile_llvm(moved).report.from_cache


def test_dumps_and_verification_run_the_passes(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    g, _ = traced()
    compile_llvm(g)
    dump = tmp_path / "dump"
    assert not compile_llvm(traced()[0], dump=dump).report.from_cache
    assert (dump / "01-verify.gir").exists()
    monkeypatch.setenv("GRAPHC_VERIFY", "1")
    assert not compile_llvm(traced()[0]).report.from_cache


def test_cache_option_off_stores_nothing(private_cache) -> None:  # noqa: ANN001
    g, _ = traced()
    result = compile_llvm(g, options={"cache": False})
    assert not result.report.from_cache
    assert not private_cache.exists() or not list(private_cache.iterdir())


def test_a_corrupt_pipeline_entry_is_reported_once_and_recompiled(private_cache) -> None:  # noqa: ANN001
    g, args = traced()
    compile_llvm(g)
    (entry,) = entries(private_cache, ".gcp")
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    with pytest.warns(cache_mod.CacheWarning, match="corrupt cache entry"):
        again = compile_llvm(traced()[0])
    assert not again.report.from_cache
    np.testing.assert_allclose(again.executable(*args)[0], interpret(g, *args)[0], rtol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compile_llvm(traced()[0]).report.from_cache


def test_the_memory_budget_warning_survives_a_warm_start() -> None:
    g, _ = traced()
    with pytest.warns(gc.MemoryBudgetWarning):
        compile_llvm(g, memory_budget=0)
    with pytest.warns(gc.MemoryBudgetWarning):
        assert compile_llvm(traced()[0], memory_budget=0).report.from_cache


WARM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import graphc as gc

    def loss(w, x):
        return np.log(np.exp(x @ w).sum(axis=1)).mean()

    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 4)).astype(np.float32)
    x = rng.standard_normal((9, 6)).astype(np.float32)
    options = json.loads(sys.argv[1])
    step = gc.jit(gc.value_and_grad(loss), backend="llvm", **options)
    value, grad = step(w, x)
    print(json.dumps({
        "pipeline_hit": step.report.from_cache,
        "object_hit": step.lower(w, x).executable.from_cache,
        "graph": str(step.optimized_graph),
        "value": float(value).hex(),
        "grad": [float(v).hex() for v in np.ravel(grad)],
    }))
    """
)


def run_fresh(cache: Path, options: dict) -> dict:  # noqa: ANN001
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(cache))
    proc = subprocess.run(
        [sys.executable, "-c", WARM_SCRIPT, json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_fresh_process_hits_the_cache_with_identical_results(private_cache) -> None:  # noqa: ANN001
    cold = run_fresh(private_cache, {})
    assert not cold["pipeline_hit"] and not cold["object_hit"]
    warm = run_fresh(private_cache, {})
    assert warm["pipeline_hit"] and warm["object_hit"]
    assert warm["graph"] == cold["graph"]
    assert (warm["value"], warm["grad"]) == (cold["value"], cold["grad"])
    changed = run_fresh(private_cache, {"disable_passes": ["simplify_after_cse"]})
    assert not changed["pipeline_hit"]


# -- a private directory ----------------------------------------------------------------


def test_a_directory_others_may_write_turns_the_cache_off(private_cache) -> None:  # noqa: ANN001
    private_cache.mkdir()
    private_cache.chmod(0o777)
    with pytest.warns(cache_mod.CacheWarning, match="group or others may write"):
        assert cache_mod.cache_dir() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once only
        g, args = traced()
        result = compile_llvm(g)
    assert not result.report.from_cache and not result.executable.from_cache
    assert list(private_cache.iterdir()) == []
    np.testing.assert_allclose(result.executable(*args)[0], interpret(g, *args)[0], rtol=1e-5)


def test_a_directory_of_another_user_turns_the_cache_off(private_cache, monkeypatch) -> None:  # noqa: ANN001
    private_cache.mkdir(mode=0o700)
    monkeypatch.setattr(cache_mod.os, "getuid", lambda: os.stat(private_cache).st_uid + 1)
    with pytest.warns(cache_mod.CacheWarning, match="belongs to user id"):
        assert cache_mod.cache_dir() is None


def test_a_new_directory_is_private(private_cache) -> None:  # noqa: ANN001
    assert cache_mod.cache_dir() == private_cache
    assert os.stat(private_cache).st_mode & 0o777 == 0o700


def test_an_entry_others_may_write_is_ignored(private_cache) -> None:  # noqa: ANN001
    directory = cache_mod.cache_dir()
    cache_mod.write(directory, "a.gco", b"payload")
    assert cache_mod.read(directory, "a.gco") == b"payload"
    (directory / "a.gco").chmod(0o666)
    with pytest.warns(cache_mod.CacheWarning, match="ignoring cache entry"):
        assert cache_mod.read(directory, "a.gco") is None


# -- the size cap ---------------------------------------------------------------------------


def test_eviction_removes_the_least_recently_used(private_cache) -> None:  # noqa: ANN001
    directory = cache_mod.cache_dir()
    for k, name in enumerate(["a.gco", "b.gcp", "c.gco"]):
        cache_mod.write(directory, name, bytes(1000))
        os.utime(directory / name, (1000.0 * (k + 1), 1000.0 * (k + 1)))
    assert cache_mod.read(directory, "a.gco") == bytes(1000)  # now the most recent
    size = (directory / "a.gco").stat().st_size
    cache_mod.evict(directory, 2 * size)
    assert [p.name for p in sorted(directory.iterdir())] == ["a.gco", "c.gco"]
    cache_mod.evict(directory, 0, keep="c.gco")
    assert [p.name for p in directory.iterdir()] == ["c.gco"]


def test_writes_keep_the_directory_under_the_cap(private_cache, monkeypatch) -> None:  # noqa: ANN001
    directory = cache_mod.cache_dir()
    (directory / "unrelated.txt").write_text("kept")
    monkeypatch.setenv("GRAPHC_CACHE_MAX_MB", str(2500 / 2**20))
    for k in range(5):
        cache_mod.write(directory, f"{k}.gco", bytes(1000))
        os.utime(directory / f"{k}.gco", (1000.0 * (k + 1), 1000.0 * (k + 1)))
    assert sorted(p.name for p in directory.iterdir()) == ["3.gco", "4.gco", "unrelated.txt"]


def test_a_process_scans_the_directory_only_when_its_writes_may_pass_the_cap(
    private_cache, monkeypatch
) -> None:  # noqa: ANN001
    directory = cache_mod.cache_dir()
    scans = []
    real_evict = cache_mod.evict

    def counting_evict(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        scans.append(args[0])
        return real_evict(*args, **kwargs)

    monkeypatch.setattr(cache_mod, "evict", counting_evict)
    monkeypatch.setenv("GRAPHC_CACHE_MAX_MB", str(3500 / 2**20))
    for k in range(3):  # about 3,000 bytes with framing: under the cap
        cache_mod.write(directory, f"{k}.gco", bytes(1000))
    assert len(scans) == 1  # the first write learns the directory's total
    cache_mod.write(directory, "3.gco", bytes(1000))  # may pass it: scan and trim
    assert len(scans) == 2
    assert sum(p.stat().st_size for p in directory.iterdir()) <= 3500
    monkeypatch.setattr(cache_mod, "RESCAN_SECONDS", 0.0)  # other processes may have written
    cache_mod.write(directory, "4.gco", bytes(10))
    assert len(scans) == 3


def test_a_stale_temporary_file_is_removed(private_cache) -> None:  # noqa: ANN001
    directory = cache_mod.cache_dir()
    stale = directory / ".abc.123.tmp"
    fresh = directory / ".def.456.tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (1000.0, 1000.0))
    cache_mod.write(directory, "a.gco", b"payload")
    assert not stale.exists() and fresh.exists()


def test_the_cap_comes_from_the_environment(monkeypatch) -> None:  # noqa: ANN001
    assert cache_mod.max_bytes() == 256 * 2**20
    monkeypatch.setenv("GRAPHC_CACHE_MAX_MB", "1.5")
    assert cache_mod.max_bytes() == int(1.5 * 2**20)
    monkeypatch.setenv("GRAPHC_CACHE_MAX_MB", "lots")
    with pytest.warns(cache_mod.CacheWarning, match="GRAPHC_CACHE_MAX_MB='lots'"):
        assert cache_mod.max_bytes() == 256 * 2**20
    monkeypatch.setenv("GRAPHC_CACHE_MAX_MB", "inf")
    with pytest.warns(cache_mod.CacheWarning, match="GRAPHC_CACHE_MAX_MB='inf'"):
        assert cache_mod.max_bytes() == 256 * 2**20


def test_compiles_under_a_tiny_cap_still_work(private_cache, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("GRAPHC_CACHE_MAX_MB", "0")
    g, args = traced()
    first = compile_llvm(g)
    # Each write keeps only itself: the object entry written last survives.
    assert len(list(private_cache.iterdir())) == 1
    again = compile_llvm(traced()[0])
    assert not again.report.from_cache
    for a, b in zip(first.executable(*args), again.executable(*args)):
        np.testing.assert_array_equal(a, b)

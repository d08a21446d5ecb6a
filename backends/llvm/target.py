"""The host target: LLVM initialization, the target machine, optimization and
object emission.

llvmlite >= 0.45 initializes LLVM itself; only the native target and its
assembly printer are set up here. Every module is built for the host CPU
(name and features), since without them LLVM emits baseline SSE2 code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import llvmlite
import llvmlite.binding as llvm

from graphc.ir import Graph


@dataclass(frozen=True)
class Host:
    """What compiled code depends on: triple, CPU name and CPU features."""

    triple: str
    cpu: str
    features: str

    def key(self) -> str:
        return f"{self.triple}|{self.cpu}|{self.features}|llvmlite {llvmlite.__version__}"


@functools.cache
def host() -> Host:
    """The process's target, initialized once."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    features = llvm.get_host_cpu_features().flatten()
    if "+avx512f" in features.split(","):
        # LLVM's tuning for these CPUs prefers 256-bit vectors; on the
        # transcendental-bound loops graphc emits, full 512-bit vectors
        # measured about 2x faster (W3 value and gradient).
        features += ",-prefer-256-bit"
    return Host(llvm.get_process_triple(), llvm.get_host_cpu_name(), features)


@functools.cache
def target_machine() -> llvm.TargetMachine:
    """The shared target machine used to optimize and emit code."""
    return new_target_machine()


def new_target_machine() -> llvm.TargetMachine:
    """A target machine for the host at -O3, position independent (for the JIT)."""
    h = host()
    target = llvm.Target.from_triple(h.triple)
    return target.create_target_machine(
        cpu=h.cpu, features=h.features, opt=3, reloc="pic", codemodel="jitdefault"
    )


def parse_and_verify(text: str) -> llvm.ModuleRef:
    """Parse LLVM IR text for the host and run LLVM's verifier on it."""
    tm = target_machine()
    mod = llvm.parse_assembly(text)
    mod.triple = host().triple
    mod.data_layout = str(tm.target_data)
    mod.verify()
    return mod


def optimize(mod: llvm.ModuleRef, unroll: bool = True) -> None:
    """Run LLVM's O3 pipeline (new pass manager) with loop and SLP vectorization,
    and loop unrolling when ``unroll`` (see :func:`pays_to_unroll`)."""
    tm = target_machine()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = unroll
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)


# Ops whose kernels run short loops of constant trip count (a 3x3 window)
# that unrolling speeds up: a small CNN's step is 5% faster unrolled. Elsewhere
# the vectorizer's own interleaving is what counts: W1, W3, W5 and W6 ran as
# fast without unrolling, while their modules compiled in 30-70% less time
# (unrolled loops were half of the object code LLVM had to emit).
UNROLL_OPS = frozenset({"conv2d", "max_pool2d", "avg_pool2d"})


def pays_to_unroll(g: Graph) -> bool:
    """Whether ``g`` (bodies included) has a kernel that loop unrolling speeds up."""
    return any(n.op in UNROLL_OPS or any(map(pays_to_unroll, n.subgraphs)) for n in g.nodes)


def emit_object(mod: llvm.ModuleRef) -> bytes:
    return bytes(target_machine().emit_object(mod))


def emit_assembly(mod: llvm.ModuleRef) -> str:
    return str(target_machine().emit_assembly(mod))


def load_object(obj: bytes) -> llvm.ExecutionEngine:
    """Link an object file into a fresh JIT engine; symbols resolve against the
    process and the names registered with ``llvm.add_symbol``."""
    # The engine takes ownership of its target machine (and disposes of it
    # with the engine), so each engine gets its own.
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), new_target_machine())
    engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
    engine.finalize_object()
    return engine

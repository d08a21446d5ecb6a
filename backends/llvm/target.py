"""The host target: LLVM initialization, the target machine, optimization and
object emission.

llvmlite >= 0.45 initializes LLVM itself; only the native target and its
assembly printer are set up here. Every module is built for the host CPU
(name and features), since without them LLVM emits baseline SSE2 code.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
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


ENTRY = "graphc_main"
_LOCAL = (llvm.Linkage.internal, llvm.Linkage.private)
# A function definition in LLVM's own printing of a module: header line(s) up
# to the opening brace, body up to a closing brace at the start of a line.
_DEFINITION = re.compile(r"^define ([^{]*)\{\n.*?^\}\n", re.M | re.S)
_GLOBAL = re.compile(r"^(@[^ ]+ = )(?!external |extern_weak )((?:private |internal )?)(.*)$", re.M)


@functools.cache
def _entry_target_machine() -> llvm.TargetMachine:
    h = host()
    target = llvm.Target.from_triple(h.triple)
    return target.create_target_machine(
        cpu=h.cpu, features=h.features, opt=0, reloc="pic", codemodel="jitdefault"
    )


def emit_split(mod: llvm.ModuleRef) -> tuple[bytes, bytes]:
    r"""An optimized module as two objects: everything but the entry function
    (code generated at -O3), and the entry function alone, generated at -O0.

    For a large graph the entry is straight-line calls to kernels, already
    ``optnone``; the -O3 code generator still gives it the greedy register
    allocator, more than half of the entry's code generation (W5's plain
    loop: 0.06 s for the entry, against 0.02 s at -O0). The split comes after
    ``optimize``, so the kernels are the very same optimized IR as in one
    module. Their symbols become hidden globals, which the entry's object
    reaches through its global offset table once both are loaded into one
    engine (:func:`load_objects`).

    >>> mod = parse_and_verify(
    ...     "define internal void @k(ptr %p) noinline {\n  store i8 1, ptr %p\n  ret void\n}\n"
    ...     "define void @graphc_main(ptr %a, ptr %b) noinline optnone {\n"
    ...     "  call void @k(ptr %a)\n  ret void\n}\n"
    ... )
    >>> kernels, entry = emit_split(mod)
    >>> engine = load_objects([kernels, entry])
    >>> engine.get_function_address("graphc_main") != 0
    True
    """
    try:
        entry_mod = parse_and_verify(_entry_only(str(mod)))
        split = not entry_mod.get_function(ENTRY).is_declaration
    except (RuntimeError, NameError):
        split = False
    if not split:  # LLVM printed something the rewrite does not expect: one object
        return emit_object(mod), b""
    for gv in itertools.chain(mod.functions, mod.global_variables):
        if gv.is_declaration:
            continue
        if gv.name == ENTRY:
            gv.linkage = "available_externally"  # emitted by the other object
        elif gv.linkage in _LOCAL:
            gv.linkage = "external"
            gv.visibility = "hidden"
    kernels = emit_object(mod)
    entry = bytes(_entry_target_machine().emit_object(entry_mod))
    return kernels, entry


def _entry_only(text: str) -> str:
    """Module text with every definition but the entry's made external (and
    not ``dso_local``: the kernels' object lies anywhere in memory)."""

    def declare(m: re.Match[str]) -> str:
        header = m.group(1)
        if f"@{ENTRY}(" in header:
            return m.group(0)
        words = [w for w in header.split(" ") if w not in ("internal", "private", "dso_local")]
        return "declare " + " ".join(words).rstrip() + "\n"

    def external(m: re.Match[str]) -> str:
        rest = m.group(3).replace("dso_local ", "")
        return f"{m.group(1)}available_externally {rest}"

    return _GLOBAL.sub(external, _DEFINITION.sub(declare, text))


def emit_assembly(mod: llvm.ModuleRef) -> str:
    return str(target_machine().emit_assembly(mod))


def load_object(obj: bytes) -> llvm.ExecutionEngine:
    """Link an object file into a fresh JIT engine; symbols resolve against the
    process and the names registered with ``llvm.add_symbol``."""
    return load_objects([obj])


def load_objects(objs: Sequence[bytes]) -> llvm.ExecutionEngine:
    """Link object files into one fresh JIT engine (each resolving the
    others' symbols, then the process's); empty ones are skipped."""
    # The engine takes ownership of its target machine (and disposes of it
    # with the engine), so each engine gets its own.
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), new_target_machine())
    for obj in objs:
        if obj:
            engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
    engine.finalize_object()
    return engine

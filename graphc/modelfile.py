"""Model files: plain Python scripts that the ``graphc`` command can compile.

A model file names what to compile and with which arguments in one function,
``example_inputs()``. It returns a dict from the name of a function defined
in the file to the tuple of positional arguments to call it with; the first
entry is the default::

    def loss(params, x, y):
        ...

    def example_inputs():
        params = {"w": np.zeros((4, 3), np.float32)}
        x, y = np.ones((8, 4), np.float32), np.zeros(8, np.int64)
        return {"loss": (params, x, y)}

``graphc report model.py`` then compiles ``loss``; ``model.py:predict``
picks another entry. The file is imported (not run as ``__main__``), so a
script keeps its training under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from graphc.ir import GraphcError, InputError, format_message

CONVENTION = (
    "define example_inputs() in the file, returning {'function_name': (arg0, arg1, ...)}; "
    "the first entry is compiled unless FILE.py:FUNCTION names another"
)


class ModelFileError(GraphcError, ValueError):
    """A model file does not follow the ``example_inputs()`` convention."""


@dataclass
class ModelEntry:
    """A function from a model file and the example arguments to compile it with."""

    path: Path
    name: str
    function: Callable[..., Any]
    args: tuple[Any, ...]


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"dir/model.py:loss"`` -> ``("dir/model.py", "loss")``.

    >>> split_spec("examples/mlp_digits.py:forward")
    ('examples/mlp_digits.py', 'forward')
    >>> split_spec("model.py")
    ('model.py', None)
    """
    head, sep, tail = spec.rpartition(":")
    if sep and head.endswith(".py") and tail.isidentifier():
        return head, tail
    return spec, None


def is_model_spec(spec: str) -> bool:
    """Whether a command-line file argument names a Python model file.

    >>> is_model_spec("m.py:loss"), is_model_spec("run/00-input.gir")
    (True, False)
    """
    return split_spec(spec)[0].endswith(".py")


def load_entry(spec: str) -> ModelEntry:
    """Import the model file of ``spec`` and pick its function and example arguments.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "m.py")
    >>> lines = ["def f(x):", "    return x * 2",
    ...          "def example_inputs():", "    return {'f': (3.0,)}"]
    >>> _ = open(path, "w").write(os.linesep.join(lines))
    >>> entry = load_entry(path)
    >>> entry.name, entry.function(*entry.args)
    ('f', 6.0)
    """
    file, name = split_spec(spec)
    path = Path(file)
    if not path.is_file():
        raise InputError(f"no such model file: {file}")
    module = _import(path)
    maker = getattr(module, "example_inputs", None)
    if not callable(maker):
        raise ModelFileError(
            format_message(f"{file} has no example_inputs() function", hint=CONVENTION)
        )
    table = maker()
    if not isinstance(table, dict) or not table:
        raise ModelFileError(
            format_message(
                f"{file}: example_inputs() returned {type(table).__name__}, not a non-empty dict",
                hint=CONVENTION,
            )
        )
    if name is None:
        name = next(iter(table))
    if name not in table:
        raise ModelFileError(
            f"{file}: example_inputs() has no entry {name!r}; it has: {', '.join(map(str, table))}"
        )
    args = table[name]
    if not isinstance(args, tuple):
        raise ModelFileError(
            format_message(
                f"{file}: example_inputs()[{name!r}] is a {type(args).__name__}, not a tuple "
                "of positional arguments",
                hint="write a 1-tuple as (x,)",
            )
        )
    function = getattr(module, name, None)
    if not callable(function):
        raise ModelFileError(
            f"{file}: example_inputs() names {name!r}, which the file does not define"
        )
    return ModelEntry(path, name, function, args)


def _import(path: Path) -> ModuleType:
    # A private module name: importing two model files called model.py in
    # one process must not hand back the first.
    module_name = f"_graphc_model_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Scripts import their neighbours (examples/common.py), as `python file.py` allows.
    folder = str(path.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    return module

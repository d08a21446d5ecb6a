"""Side-by-side timing and memory of graphc against hand-written NumPy, PyTorch and JAX.

Run `python -m benchmarks --help`. This package's `__init__` imports nothing heavy: the
thread budget must be set before NumPy, PyTorch or JAX load (see `benchmarks.threads`).
"""

# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Each creates .venv (once) and installs graphc from pyproject.toml into it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,examples,viz,mpi]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/mlp_digits.py

test: $(STAMP) lint typecheck
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict ir
	$(VENV)/bin/mypy backends

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[peers]' || echo "peers not installed; graphc and NumPy only"
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis

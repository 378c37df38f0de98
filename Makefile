# Gradient Lab -- developer entry points. `make run` works on a fresh machine:
# it creates .venv, installs the project (editable, with dev extras) and starts the app.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
STAMP  := $(VENV)/.installed

# Constraints are applied always, not only in CI: they pin torch==2.13.0, the CPU wheel that
# lies on this project's machines (any other torch spec downloads a multi-GB CUDA build).
# 2.13.0 is a real PyPI release, so the pin is harmless elsewhere; to let pip choose freely:
#   make install CONSTRAINTS=
# (Deliberately not named PIP_CONSTRAINT: pip itself reads that environment variable.)
CONSTRAINTS ?= ci/constraints.txt

PYTEST_ARGS ?=

.PHONY: run host install test test-fast bench load lint clean distclean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when pyproject.toml (or the constraints) changed since the last install.
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]' $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/streamlit run app/main.py --server.port $(PORT)

# The hosted way (what the Docker image runs): training executors (EXECUTORS, default
# GRADLAB_EXECUTORS or the cores) and uvicorn web workers (WORKERS, default WEB_CONCURRENCY or
# the cores), all on $(PORT). HOST=0.0.0.0 to serve a network.
HOST      ?= 127.0.0.1
WORKERS   ?=
EXECUTORS ?=
host: $(STAMP)
	$(BIN)/gradlab-serve --host $(HOST) --port $(PORT) $(if $(WORKERS),--workers $(WORKERS)) \
		$(if $(EXECUTORS),--executors $(EXECUTORS))

# Every test: fast, slow, lesson and browser ones. This is what CI (.ci/run) runs.
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser" $(PYTEST_ARGS)

# The benchmark suite (tools/bench.py): speed figures as ratios. BENCH_ARGS="--quick" for a
# short run, BENCH_ARGS="--json bench.json" to keep the document.
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/gradlab bench $(BENCH_ARGS)

# The load test (tools/load.py): a class by default: 30 websocket sessions and 1 Chromium tab
# open within 10 s, press Play at random within 10 s and train for 60 s, on gradlab-serve
# with 2 web workers. Other runs: LOAD_ARGS="--sessions 60", LOAD_ARGS="--burst 200",
# LOAD_ARGS="--soak 1800"; `$(BIN)/python -m tools.load --help` lists the flags.
LOAD_ARGS ?=
load: $(STAMP)
	$(BIN)/python -m tools.load $(LOAD_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache .hypothesis out test-results
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

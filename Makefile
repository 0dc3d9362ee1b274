# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# PyTorch first, from its CPU wheel index unless this is a Linux machine with an NVIDIA GPU:
# PyPI's default Linux torch is the CUDA build, several GB. Override with
# `make TORCH_INDEX=https://download.pytorch.org/whl/cu126 ...`, or TORCH_INDEX= for PyPI's default.
TORCH ?= torch==2.13.0
NVIDIA ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
OS := $(shell uname -s)
TORCH_INDEX ?= $(if $(or $(NVIDIA),$(filter-out Linux,$(OS))),,https://download.pytorch.org/whl/cpu)

.PHONY: venv demo test lint format clean

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
# The CPU index when it answers; a machine that cannot reach it (a mirror, no network) takes
# torch from its own pip configuration instead.
	if [ -n "$(TORCH_INDEX)" ] && curl -fsS -o /dev/null --max-time 10 "$(TORCH_INDEX)/"; then \
		$(BIN)/pip install -q '$(TORCH)' --index-url "$(TORCH_INDEX)"; \
	else \
		$(BIN)/pip install -q '$(TORCH)'; \
	fi
	$(BIN)/pip install -q -e '.[dev]'
# The soundfont extra's renderer, without the PyAudio it names for live playback: that builds
# from source on Linux (PortAudio headers), and rendering to WAV never uses it.
	$(BIN)/pip install -q --no-deps 'tinysoundfont>=0.3.7'

venv: $(BIN)/activate

demo: venv
	$(BIN)/musicvae demo
# The musicvae command lives in the virtualenv: say how to reach it.
	@echo "musicvae is installed in $(VENV): run 'source $(VENV)/bin/activate' to use the musicvae command."

test: venv
	$(BIN)/python -m pytest -q

# Style, types and layering: ruff, mypy on src (settings in pyproject.toml) and the import
# contract ([tool.importlinter]). CI runs it before the tests (.ci/run).
lint: venv
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info

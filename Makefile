# Two commands for a newcomer: `make run` (the main job) and `make test` (what CI runs).
# Both create the virtual environment in .venv when it is missing or out of date.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
CLIP ?= ../shared/data/video/city.mp4
TRIALS ?= 10
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run demo test lint venv clean bench bench-quick

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# The studio, embedded mode: SQLite, local media, in-memory channels, an in-process worker.
run: venv
	$(PY) manage.py migrate --noinput
	@echo "Pixel AutoML Studio: open http://$(HOST):$(PORT) (sign up to create the first user)"
	$(PY) -m webapp.serve --host $(HOST) --port $(PORT)

# The engine alone, headless: a short search (rungs 300 -> 1,200 steps) on a sample clip with a
# progress bar and a report; the engine's default goes on to 4,800 steps.
demo: venv
	$(PY) -m engine search $(CLIP) --task sr_x2 --trials $(TRIALS) --max-steps 1200 --out runs/demo

# Benchmarks measured side by side; writes BENCHMARKS.md and docs/bench/ (see bench/cli.py).
# Trained checkpoints and search runs are cached in .cache/bench: BENCH_ARGS=--fresh for a
# cold run, BENCH_ARGS=--full to add x4 and denoising.
bench: venv
	$(PY) -m bench $(BENCH_ARGS)

bench-quick: venv
	$(PY) -m bench --quick

lint: venv
	$(PY) -m ruff check .

test: venv lint
	$(PY) -m pytest -q

# Keeps .cache/bench (hours of trained benchmark checkpoints): remove it by hand if wanted.
clean:
	rm -rf runs .cache/frames .pytest_cache var

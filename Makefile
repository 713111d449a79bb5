# Two commands for newcomers: `make demo` (run the platform) and `make test` (run the checks).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint typecheck pytest bench clean

$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	DEBUG=$${DEBUG:-false} $(PY) manage.py demo

# lint-imports: the app layers of [tool.importlinter] in pyproject.toml (tests/test_layout.py
# shows it fails on an upward import).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache --no-logo

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# Every bench runs (a miss does not stop the others), each one's stamped output is kept in
# bench/results/<name>.txt, and the misses are listed at the end; `make bench BENCH="fairness metrics"`
# runs only those.
bench: $(STAMP)
	$(PY) bench/support/run_all.py $(BENCH)

clean:
	rm -rf var/broker var/db.sqlite3* var/media var/celerybeat-schedule*

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pytest processes: the suite mostly waits on services and subprocesses, so two halve its time on
# two cores; each process starts its own broker and clusters. A test file stays in one process.
TEST_WORKERS ?= 2

.PHONY: install demo test lint reliability

$(BIN)/ioc: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/ioc

install: $(BIN)/ioc

demo: install
	$(BIN)/ioc demo

test: install
	./scripts/test-services.sh
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: install
	$(BIN)/ruff check ioc streams detectors tests

# docs/reliability.md: fault, hostile-input and access tests plus a 10-minute soak run
reliability: install
	./scripts/test-services.sh
	$(BIN)/python scripts/reliability_report.py --soak-minutes 10

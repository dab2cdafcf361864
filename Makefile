PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint

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
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check ioc streams detectors tests

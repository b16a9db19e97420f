# Two commands on a fresh machine: `make demo` and `make test`. Each builds .venv
# when it is missing (or when pyproject.toml changed), so nothing relies on a
# package installed by hand.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
EXTRAS := dev,cli,qt,diagrams,docs,cache

export QT_QPA_PLATFORM ?= offscreen

.PHONY: demo test lint bench statecharts screenshots docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/connmgr demo

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

lint: $(STAMP)
	$(VENV)/bin/ruff check connmgr tests benchmarks
	$(VENV)/bin/ruff format --check connmgr tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m benchmarks

statecharts: $(STAMP)
	$(VENV)/bin/connmgr statechart --format mermaid -o statecharts/connection.mmd
	$(VENV)/bin/connmgr statechart --format dot -o statecharts/connection.dot
	$(VENV)/bin/connmgr statechart --format svg -o statecharts/connection.svg
	cp statecharts/connection.svg docs/images/connection.svg

# Fonts come from pip packages of the `qt` extra (connmgr/qt/fonts.py): no system package, no root.
screenshots: $(STAMP)
	$(PY) -m connmgr.qt.screenshots docs/images

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) site .mypy_cache .ruff_cache

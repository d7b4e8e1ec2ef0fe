# Two commands on a fresh machine: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_HOME := $(CURDIR)/.mlpipe-home

.PHONY: demo ui test lint bench bench-ui screenshot clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-%: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[$*]'
	touch $@

ML := MLPIPE_HOME=$(DEMO_HOME) MLPIPE_APPS=$(CURDIR)/apps $(BIN)/ml
DEMO_PIPE := text_classification/pipe/bow_model.yaml

demo: $(VENV)/.installed-demo
	$(ML) runpipe $(DEMO_PIPE)
	@$(ML) runpipe $(DEMO_PIPE) --json 2>/dev/null | $(BIN)/python -c \
	  'import json, sys; r = json.load(sys.stdin)["jobs"][-1]["outputs"]["report"]; print("evaluation report:"); print(open(r).read())'

ui: $(VENV)/.installed-demo
	$(ML) ui --open

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench

bench-ui: $(VENV)/.installed-test
	$(BIN)/python -m bench.ui

screenshot: $(VENV)/.installed-test
	$(BIN)/python -m bench.ui --screenshot docs/ui-pipe.png
	$(BIN)/python -m bench.ui_editor docs/ui-editor.png

clean:
	rm -rf $(VENV) $(DEMO_HOME) *.egg-info

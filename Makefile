# The two commands a new user runs:
#   make demo   installs if needed, then runs the mini_en recipe end to end (egs/mini_en/rl1/run.sh)
#   make test   installs if needed, then lints and runs the test suite
VENV := tools/venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test lint
install:
	$(MAKE) -C tools

demo: install
	cd egs/mini_en/rl1 && ./demo.sh

lint: install
	$(PY) -m ruff check ttsrl tests bench egs utils

test: lint
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

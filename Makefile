# Two commands set everything up on a fresh machine (see README):
#   make sweep   creates .venv if missing, then runs the default sweep into results/
#                (the shipped reference results stay apart, in results/reference/)
#   make test    creates .venv if missing, installs Chromium for the browser test, runs the tests
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: sweep test browser lint

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch first and pinned: 2.13.0 is the CPU build; an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

sweep: $(STAMP)
	@$(VENV)/bin/rnnbench sweep $(ARGS)

browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check rnnbench dashboard tests

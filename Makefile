# Two commands set everything up on a fresh machine (see README):
#   make sweep   creates .venv if missing, then runs the default sweep into results/
#                (the shipped reference results stay apart, in results/reference/)
#   make test    creates .venv if missing, installs Chromium for the browser test, runs the tests
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: sweep test browser lint tfhe-env

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch first and pinned: 2.13.0 is the CPU build; an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# The TFHE backend's own environment: concrete-python 2.11 needs numpy < 2 and setuptools < 81
# (it imports pkg_resources); torch pinned first (concrete depends on it; unpinned it pulls CUDA).
# pyarrow < 26 and pandas < 3 (numpy 1; the child checks its rows against the schema), numba,
# scikit-learn, threadpoolctl: what a point's child imports from rnnbench.
TFHE_VENV ?= .venv-tfhe
TFHE_STAMP := $(TFHE_VENV)/.installed-stamp
$(TFHE_STAMP): Makefile
	test -x $(TFHE_VENV)/bin/python || python3 -m venv $(TFHE_VENV)
	$(TFHE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(TFHE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 \
		concrete-python==2.11.0 'numpy<2' 'setuptools<81' 'pyarrow<26' 'pandas<3' numba scikit-learn threadpoolctl
	touch $(TFHE_STAMP)

tfhe-env: $(TFHE_STAMP)

sweep: $(STAMP)
	@$(VENV)/bin/rnnbench sweep $(ARGS)

browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser $(TFHE_STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check rnnbench dashboard tests

# The two commands of the README:
#   make reproduce   the main job: environment, assets, every notebook (quick profile), report
#   make test        ruff, then the test suite (creates the environment if needed)
# Both need only CPython 3.11 on the machine. Assets come from upstream, or from a local
# mirror when YOLOTUT_MIRROR is set (CI: the read-only ../shared/mirror).

PYTHON ?= python3.11
VENV ?= .venv
PROFILE ?= quick
BIN := $(VENV)/bin
# Use the offline mirror beside the checkout when there is one (CI's layout) and the
# user did not choose another source.
ifeq ($(origin YOLOTUT_MIRROR), undefined)
  ifneq ($(wildcard ../shared/mirror/README.md),)
    export YOLOTUT_MIRROR := $(abspath ../shared/mirror)
  endif
endif
STAMP := $(VENV)/.installed

.PHONY: env reproduce lint test test-fast fuzz clean-outputs

env: $(STAMP)

$(STAMP): pyproject.toml requirements/lock.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "yolotut needs CPython 3.11 (deepsparse 1.8 has no wheels for other versions); set PYTHON=/path/to/python3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements/lock.txt -e '.[dev]'
	$(BIN)/python -m pip check
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/yolotut reproduce --profile $(PROFILE)

# The package, the benchmark scripts and the notebooks' paired .py sources (pyproject.toml [tool.ruff]).
lint: $(STAMP)
	$(BIN)/ruff check yolotut benchmarks notebooks

test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not notebooks"

# The fuzz tests' long budget: at least 10,000 generated inputs per parser, counts printed at the end.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest -q -p no:cacheprovider -m fuzz

clean-outputs:
	rm -rf outputs

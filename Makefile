# Two commands do all the set-up: `make repro` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands say `python`: it must be the venv's, as after `source .venv/bin/activate`.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export TF_CPP_MIN_LOG_LEVEL ?= 3
export DVC_NO_ANALYTICS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: repro repro-full test test-fast bench setup clean-venv

setup: $(STAMP)

# Re-installs only when the lock file or the package metadata changes. The lock goes in with uv
# where it can be had (70 s here against pip's 3 minutes; install_requirements.py), else pip. The
# package itself goes in editable, without dependencies: the lock already pinned every one of them.
$(STAMP): requirements.txt pyproject.toml install_requirements.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python install_requirements.py requirements.txt .
	touch $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

# The default run leaves the big standard architectures out of the comparison: on a 2-core CPU
# without AVX-512 DenseNet121 alone trains for about 5 minutes, ResNet50 longer (README,
# "Speed"). This runs the whole comparison as a DVC experiment: params.yaml keeps the values
# set here; compare and the stages after it run again, no training stage of the study.
FULL_STUDY := -S 'compare.models=[lenet5,densenet121,resnet50]' -S 'compare.keep_models=[lenet5,densenet121]'
repro-full: $(STAMP)
	$(BIN)/dvc exp run $(FULL_STUDY)

# The full suite, as CI runs it: two workers (pytest-xdist), a test file per worker at a time,
# so a file's shared fixture is built once. Files are handed out in the order given:
# test_pipeline first, as it builds the tiny project (tests/tiny_project.py) that the two
# experiment files start from; they come after the longest other files, so the build is done
# when a worker reaches them; then the rest. The Ray cluster test runs afterwards, alone:
# beside another test's local Ray its driver once failed to attach ("Failed to connect to
# Ray cluster"); alone it never has.
FIRST := tests/test_pipeline.py tests/test_faults_stages.py tests/test_jax.py tests/test_inspect_outputs.py \
	tests/test_experiments.py tests/test_queued_experiment.py
TEST_FILES := $(FIRST) $(filter-out $(FIRST),$(sort $(wildcard tests/test_*.py)))
PYTEST := $(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder
test: $(STAMP)
	$(PYTEST) -m "not cluster" --durations=15 $(TEST_FILES)
	$(BIN)/python -m pytest -m cluster

# Everything but the end-to-end dvc runs (marked slow): for the edit-test loop.
test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/sweep_bench.py

clean-venv:
	rm -rf $(VENV)

# The two commands of the README. Both create .venv (Python 3.11) and install motif into it first.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.motif-installed

export HF_HUB_OFFLINE ?= 1
export MPLBACKEND ?= Agg

.PHONY: install test demo clean-demo

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: $(STAMP)
	WANDB_MODE=offline $(PY) -m pytest -q

demo: $(STAMP)
	$(PY) tools/train.py --config configs/synthetic_order.yaml

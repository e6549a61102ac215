# The two commands of the README. Both create .venv (Python 3.11) and install motif into it first.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.motif-installed

export HF_HUB_OFFLINE ?= 1
export MPLBACKEND ?= Agg

.PHONY: install test demo

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check motif tools tests benchmarks
	WANDB_MODE=offline $(PY) -m pytest -q

WORLD := data/synthetic/world
RUN := runs/synthetic

demo: $(STAMP)
	$(PY) tools/make_synthetic.py --out $(WORLD)
	$(PY) tools/train.py --config configs/synthetic.yaml
	$(PY) tools/explain.py --ckpt $(RUN)/best.ckpt --out $(RUN)/explanations \
		--video $$(awk 'NR % 9 == 1 {print "$(WORLD)/" $$1}' $(WORLD)/test.txt | head -n 3)
	$(PY) tools/evaluate.py --run $(RUN)
	$(PY) tools/summarize.py --run $(RUN)

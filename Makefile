# rasa-intent-student: two virtual environments.
#   .venv          Python 3.10: rasa 3.6 + the runtime + eval/dev tools (never torch)
#   .venv-factory  Python 3.11: torch (CPU), transformers, sentence-transformers, onnx
SHELL := /bin/bash
PYTHON310 ?= $(shell scripts/find-python 3.10)
PYTHON311 ?= $(shell scripts/find-python 3.11)
VENV := .venv
FACTORY := .venv-factory
PY := $(VENV)/bin/python
FPY := $(FACTORY)/bin/python
PIP_FLAGS := --disable-pip-version-check -q
PYTEST_FLAGS ?=
MODEL_DIR := rasa_intent_student/models/default
DISTILL_DIR := artifacts/distill
DISTILL_NEXT_DIR := artifacts/distill-next
PRUNED_DIR := artifacts/pruned-int8
DISTILLED_WORK_DIR := build/factory-distilled
# The second stage's settings beside its length: make distill-next and make seed-spread.
SECOND_STAGE_FLAGS := --lr 2e-4 --warmup-steps 100 --rank-weight 0.1 --parallel-sources dialogue dialogue-next dialogue-more django
SPREAD_DIR ?= artifacts/spread
SEEDS ?= 0 1 2 3
SPREAD_FLAGS ?=
FIRST_STAGE_2000 := artifacts/first-stage-2000.pt
SECOND_STAGE_CACHE := artifacts/second-stage-teacher-cache

.PHONY: setup test test-fast test-runtime test-factory model model-pruned model-card reference demo bench evaluate distill distill-next seed-spread clean help scale-check

help:
	@echo "make setup   create .venv (py3.10, rasa) and .venv-factory (py3.11, torch) and install the package"
	@echo "make demo    train examples/memory_bot, run rasa + action server, play a multilingual conversation"
	@echo "make test    the full test suite (both environments, slow tests included)"
	@echo "make model   rebuild the embedded default student: distill in two stages (about 2 h on 2 cores), prune the vocabulary, fused INT8, model card: 2 h to 2 h 30 min"
	@echo "make bench / make evaluate / make distill / make model-pruned / make reference / make seed-spread"

setup: $(VENV)/.installed $(FACTORY)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	@test -n "$(PYTHON310)" || { scripts/find-python 3.10; exit 1; }
	@test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade "pip<25" wheel
	$(PY) -m pip install $(PIP_FLAGS) -e ".[rasa,eval,peers,dev]"
	@touch $@

# torch goes first and pinned: 2.13.0 is the CPU wheel on local disk; an unpinned torch pulls a CUDA build.
$(FACTORY)/.installed: setup.cfg pyproject.toml
	@test -n "$(PYTHON311)" || { scripts/find-python 3.11; exit 1; }
	@test -x $(FPY) || $(PYTHON311) -m venv $(FACTORY)
	$(FPY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(FPY) -m pip install $(PIP_FLAGS) torch==2.13.0
	$(FPY) -m pip install $(PIP_FLAGS) -e ".[factory,eval,dev]"
	@touch $@

test: setup test-runtime test-factory

test-runtime: $(VENV)/.installed
	$(PY) -m pytest tests --ignore=tests/factory -m "slow or not slow" $(PYTEST_FLAGS)

test-factory: $(FACTORY)/.installed
	$(FPY) -m pytest tests/factory -m "slow or not slow" $(PYTEST_FLAGS)

test-fast: setup
	$(PY) -m pytest tests --ignore=tests/factory -q
	$(FPY) -m pytest tests/factory -q

# The shipped default: the distilled 2-layer student (its layers are 0 and 1 of the distilled model, which are
# the teacher's 0 and 11) through the factory (fused INT8 graph), then its card gets the benchmark results.
# On the 2-core reference CPU: distill 65-90 min (teacher targets and token states about 10, 12,000 steps at 2.6-3.7
# steps/s depending on what else runs), distill-next 35-45 min (targets of its corpus about 12-20, 4,000 steps), build
# (with the language offsets) about 1 min, model-card 3-10 min: 2 h to 2 h 30 min in all.
# `reference` runs after the build: its FP32 student is the graph this build quantized (in its work dir).
model: distill-next model-pruned
	$(FACTORY)/bin/rasa-intent-student build --teacher $(DISTILL_NEXT_DIR)/student-st --layers 0 1 \
		--work-dir $(DISTILLED_WORK_DIR) --output $(MODEL_DIR)
	$(FACTORY)/bin/rasa-intent-student reference --work-dir $(DISTILLED_WORK_DIR)
	$(MAKE) model-card

QUALITY_COMMAND := rasa-intent-student bench --models pruned-int8=$(PRUNED_DIR) distilled-int8=$(MODEL_DIR) teacher-fp32=artifacts/teacher-fp32 --skip-speed --skip-rasa --json

model-card: $(VENV)/.installed $(FACTORY)/.installed
	mkdir -p artifacts/results
	$(VENV)/bin/$(QUALITY_COMMAND) > artifacts/results/quality-default.json
	$(FACTORY)/bin/rasa-intent-student distill --describe $(MODEL_DIR) --quality artifacts/results/quality-default.json \
		--quality-command "$(QUALITY_COMMAND)"

# The pruned-only student (no distillation): the "before" of the model card.
model-pruned: $(FACTORY)/.installed
	test -f $(PRUNED_DIR)/model.onnx || $(FACTORY)/bin/rasa-intent-student build --teacher e5-small-offline --output $(PRUNED_DIR)

# 65-90 minutes on 2 cores: corpus and translation pairs, teacher embeddings and token states (cached), 12,000 steps;
# interrupted runs continue with `rasa-intent-student distill --output $(DISTILL_DIR) --resume`.
distill: $(FACTORY)/.installed
	$(FACTORY)/bin/rasa-intent-student distill --output $(DISTILL_DIR)

# The second stage: the first stage's student, 4,000 more steps with 1,920 more dialogue messages
# (dialogue-next, dialogue-more) and the translation-ranking term; --resume continues it like the first.
distill-next: distill
	$(FACTORY)/bin/rasa-intent-student distill --output $(DISTILL_NEXT_DIR) --init-from $(DISTILL_DIR)/ckpt.pt \
		--max-steps 4000 $(SECOND_STAGE_FLAGS)

# The spread over training seeds in the reduced setting: the first stage stopped at step 2,000, then a 3,000-step
# second stage per seed in SEEDS (one corpus and teacher cache, --corpus-seed 0), each built and benchmarked beside
# the shipped student and the teacher, then the spread table. SPREAD_FLAGS adds a lever to every second stage, with
# its own SPREAD_DIR (the first stage and the teacher cache are shared), e.g.
#   make seed-spread SPREAD_DIR=artifacts/spread-probe SPREAD_FLAGS="--route-weight 0.03 --route-loss probe"
# On the 2-core reference CPU: first stage 20 min, the second stage's teacher targets 15-23 min, each second stage
# 15 min (two at a time), builds 1 min each, bench 10-15 min.
seed-spread: $(VENV)/.installed $(FACTORY)/.installed
	mkdir -p $(SPREAD_DIR)
	test -f artifacts/teacher-fp32/model.onnx || $(FACTORY)/bin/rasa-intent-student reference --teacher-only
	test -f $(FIRST_STAGE_2000) || { $(FACTORY)/bin/rasa-intent-student distill --output artifacts/distill-2000 \
		--stop-at-step 2000 && cp artifacts/distill-2000/ckpt.pt $(FIRST_STAGE_2000); }
	for seed in $(SEEDS); do \
		$(FACTORY)/bin/rasa-intent-student distill --output $(SPREAD_DIR)/seed$$seed --init-from $(FIRST_STAGE_2000) \
			--max-steps 3000 $(SECOND_STAGE_FLAGS) --seed $$seed --corpus-seed 0 --teacher-cache $(SECOND_STAGE_CACHE) \
			$(SPREAD_FLAGS) && \
		$(FACTORY)/bin/rasa-intent-student build --teacher $(SPREAD_DIR)/seed$$seed/student-st --layers 0 1 \
			--work-dir build/spread-seed$$seed --output $(SPREAD_DIR)/int8-seed$$seed --no-compare-quantization --latency-runs 0 || exit 1; \
	done
	$(VENV)/bin/rasa-intent-student bench --models $(foreach s,$(SEEDS),seed$(s)=$(SPREAD_DIR)/int8-seed$(s)) shipped=$(MODEL_DIR) \
		teacher-fp32=artifacts/teacher-fp32 --skip-speed --skip-rasa --no-progress --json > $(SPREAD_DIR)/bench.txt
	$(PY) -m rasa_intent_student.evaluation.spread $(SPREAD_DIR)/bench.txt --runs $(foreach s,$(SEEDS),seed$(s))

demo: $(VENV)/.installed
	$(PY) -m examples.memory_bot.demo

# memory_bot on PostgreSQL + Redis with 2 Rasa replicas and 2 action servers on 127.0.0.1, 20 users x 20 messages;
# the last line is JSON. Options: make scale-check SCALE_CHECK_FLAGS="--replicas 1" (see --help).
scale-check: $(VENV)/.installed
	$(PY) -m examples.memory_bot.scale_check $(SCALE_CHECK_FLAGS)

# FP32 teacher (12 layers) and FP32 student as ONNX directories under artifacts/, for bench.
reference: $(FACTORY)/.installed
	test -f artifacts/teacher-fp32/model.onnx -a -f artifacts/student-fp32/model.onnx || \
		$(FACTORY)/bin/rasa-intent-student reference --work-dir $(DISTILLED_WORK_DIR)

# DIET gets 10 epochs: Rasa's default 100 takes over 40 minutes on 2 cores with 18 languages of n-grams.
bench: setup reference
	$(VENV)/bin/rasa-intent-student bench --diet-epochs 10

evaluate: $(VENV)/.installed
	$(VENV)/bin/rasa-intent-student evaluate --data rasa_intent_student/data/routes/dev

clean:
	rm -rf $(VENV) $(FACTORY) build *.egg-info .demo

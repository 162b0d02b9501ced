# Two commands do everything on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow test-fast lint format bench bench-gpu grid grid-a grid-b grid-credit grid-credit-s grid-credit-st report policy-analysis clean

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python train.py experiment=st_policy

# Random init vs 900-step S and T runs on the demo's retrieval sets, 3 seeds (docs/results.md; about
# 30 min on 2 cores). Completed runs in multirun/demo_discrimination are read, not redone.
discrimination: $(STAMP)
	$(BIN)/python -m benchmarks.demo_discrimination

test: $(STAMP)
	$(BIN)/pytest -q

test-fast: $(STAMP)
	$(BIN)/pytest -q -x -k "not experiment"

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The paper's ablation grid at demo scale, shortened to half the demo's 900 steps (docs/results.md).
# Seeds outermost: an interrupted sweep still has every ablation with the same seeds.
GRID_SHORT = trainer.max_steps=450 trainer.val_check_interval=150 model.scheduler.step_size=400 \
	policy_timing.interval=50 policy_timing.episode_steps=5 \
	callbacks.model_checkpoint.every_n_train_steps=450 callbacks.nn_retrieval.frames_per_video=5
# Two sweeps side by side, one thread each (2 cores), balanced by run time; `make report`
# reads both.
SWEEP ?= multirun/demo_grid_v3
GRID_a = s,s_policy,t,t_policy
GRID_b = s_then_t,st,st_policy
grid: $(STAMP)
	$(MAKE) -j2 grid-a grid-b

grid-a grid-b: grid-%: $(STAMP)
	mkdir -p $(SWEEP)
	OMP_NUM_THREADS=1 $(BIN)/python train.py -m seed=1,2,3 experiment=$(GRID_$*) \
		$(GRID_SHORT) hydra.sweep.dir=$(SWEEP)/$* > $(SWEEP)/$*.log 2>&1

# The +P rows with policy=credit (docs/policy_credit.md), the grid's shortened runs, 3 seeds.
GRID_CREDIT_s = s_policy
GRID_CREDIT_st = st_policy
grid-credit: $(STAMP)
	$(MAKE) -j2 grid-credit-s grid-credit-st

grid-credit-s grid-credit-st: grid-credit-%: $(STAMP)
	mkdir -p $(SWEEP)_credit
	OMP_NUM_THREADS=1 $(BIN)/python train.py -m seed=1,2,3 experiment=$(GRID_CREDIT_$*) \
		policy=credit name=$*_credit $(GRID_SHORT) hydra.sweep.dir=$(SWEEP)_credit/$* \
		> $(SWEEP)_credit/$*.log 2>&1

report: $(STAMP)
	$(BIN)/python -m ssl_rl.report $(SWEEP) --out docs/results

# The paper's Fig. 4 protocol (docs/policy-analysis.md): a 300-step S checkpoint, then from it
# the policy, the policy with the paper's one action per sample, and three controls (no
# learning: lr 0; uniform; error-proportional), 3 seeds each; one thread
# per run, two runs at a time (make -j2). A finished run (its summary.json) is not redone.
ANALYSIS ?= multirun/policy_analysis
ANALYSIS_SEEDS ?= 1 2 3
ANALYSIS_ARMS ?= pa_policy pa_policy_lr0 pa_policy_spa1 pa_uniform pa_errprop
ARM_pa_policy_lr0 = policy.learner.lr=0
ARM_pa_policy_spa1 = policy.samples_per_action=1
# Middle ground (not in the default list; docs/policy-analysis.md): 8 or 4 actions per
# training step of 32.
ARM_pa_policy_spa4 = policy.samples_per_action=4
ARM_pa_policy_spa8 = policy.samples_per_action=8
ARM_pa_uniform = policy=monitor
ARM_pa_errprop = policy=errprop
# Per-group credit at the paper's one action per sample (docs/policy_credit.md; not in the
# default list): make policy-analysis ANALYSIS_ARMS=pa_credit ANALYSIS_SEEDS="1 2 3 4 5"
ARM_pa_credit = policy=credit policy.samples_per_action=1
ANALYSIS_RUNS = $(foreach arm,$(ANALYSIS_ARMS),$(foreach seed,$(ANALYSIS_SEEDS),\
	$(ANALYSIS)/runs/$(arm)_seed$(seed)/summary.json))
policy-analysis: $(STAMP)
	$(MAKE) -j2 $(ANALYSIS_RUNS)
	$(BIN)/python -m ssl_rl.report.policy_analysis $(ANALYSIS)/runs --out docs/results/policy_analysis

$(ANALYSIS)/base/summary.json:
	$(BIN)/python train.py experiment=s trainer.max_steps=300 '~callbacks.nn_retrieval' \
		hydra.run.dir=$(ANALYSIS)/base

$(ANALYSIS)/runs/%/summary.json: $(ANALYSIS)/base/summary.json
	OMP_NUM_THREADS=1 $(BIN)/python train.py experiment=policy_analysis \
		init_from=$(ANALYSIS)/base name=$(firstword $(subst _seed, ,$*)) \
		seed=$(lastword $(subst _seed, ,$*)) $(ARM_$(firstword $(subst _seed, ,$*))) \
		'~callbacks.progress_bar' trainer.enable_progress_bar=false hydra.run.dir=$(ANALYSIS)/runs/$*

bench: $(STAMP)
	$(BIN)/python -m benchmarks.permutations
	$(BIN)/python -m benchmarks.input_pipeline
	$(BIN)/python -m benchmarks.image_pipeline
	$(BIN)/python -m benchmarks.video_pipeline
	$(BIN)/python -m benchmarks.training_throughput
	$(BIN)/python -m benchmarks.validation_scoring
	$(BIN)/python -m benchmarks.policy_overhead

# On a GPU machine (docs/gpu.md): paper-format data made and prepared, train.py end to end
# (workers / decode=device), the model step per speed setting, the policy overhead, the loaders.
# About 6 minutes on one H100/H200 with 16 cores; BENCH_PARTS="1 3 4" runs only those parts.
bench-gpu: $(STAMP)
	PY=$(BIN)/python bash benchmarks/bench_gpu.sh

clean:
	rm -rf outputs multirun data_cache

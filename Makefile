# Two commands do all the set-up:  `make repro`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

PARAMS ?= params.yaml

.PHONY: install check-params repro test lint bench cpu-study clean

# (Re)create .venv and install the project with its pipeline + dev + notebook extras.
# Reruns whenever pyproject.toml or constraints.txt change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[pipeline,dev,notebooks]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

# The params check (as dvc.yaml's check_params stage), run before DVC parses dvc.yaml: a value its `matrix` cannot
# take (a scalar `pinn.depths`) is then named in one line instead of DVC's "'Value' object is not iterable".
check-params:
	$(BIN)/python -m pinn.config $(PARAMS)
	$(BIN)/python -m cnn.config $(PARAMS)

# Reproduce every result and figure on the default (CPU-sized) params.yaml, after the params check.
# The venv's bin comes first on PATH so that the `python` of each dvc.yaml stage is the venv's.
repro: install
	$(MAKE) --no-print-directory check-params
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# The whole test suite (unit tests, DDP, DeepXDE interop, notebooks).
test: install
	$(BIN)/python -m pytest -n 2 --nbmake tests notebooks

# The converged CPU study (params_cpu_study.yaml -> data/cpu_study/): ~1 h 50 min on 2 cores, then the L-BFGS
# finish of every control's runs (data/cpu_study/lbfgs/, ~1 h for AdamW, StableGrad and AGC; the verdicts of
# pinn/verdicts.py are taken after it, so every control gets it); both resume what is done (AMD EPYC timings).
cpu-study: install
	$(BIN)/python -m pinn.stages.study --params params_cpu_study.yaml --out data/cpu_study --ends-only agc lra muon soap --jobs 2
	$(BIN)/python -m pinn.stages.finish --params params_cpu_study.yaml --study data/cpu_study --iters 2500 --jobs 2

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python benchmarks/stablegrad_overhead.py
	$(BIN)/python benchmarks/pinn_vs_deepxde.py
	$(BIN)/python benchmarks/cnn_step_overhead.py
	$(BIN)/python benchmarks/time_to_accuracy.py --depth 8

clean:
	rm -rf $(VENV)

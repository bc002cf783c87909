# imaging-lab: `make run` (the main job) and `make test` each install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install.stamp
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: install run test test-all lint format report bench bench-quick bench-speed bench-phase-retrieval \
	bench-super-resolution bench-style-transfer bench-portrait-segmentation bench-auto-correction gpu-bundle \
	bench-gpu clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e ".[dev]"
	@if [ ! -d $(FASHION_MNIST) ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's dataset-fashion-mnist"; \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) \
		|| echo "warning: could not install dataset-fashion-mnist; torchvision will download Fashion-MNIST when online"; \
	fi
	touch $(STAMP)

run: install          ## the main job: PR-DAD I on Fashion-MNIST, offline, 2 idle CPU cores: ~9 min with bf16, ~26 without
	$(PY) run.py

test: install         ## the test suite without the `slow` tests, on every core (~10 min on 2)
	WANDB_MODE=offline $(PY) -m pytest -q -n auto

test-all: install     ## every test, the slow ones too
	WANDB_MODE=offline $(PY) -m pytest -q -n auto -m ""

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

report: install       ## one table + plot of a multirun: make report DIR=outputs/<task>/<experiment>/multirun/<time>
	@test -n "$(DIR)" || (echo "usage: make report DIR=<multirun dir>"; exit 2)
	$(PY) -m scripts.report $(DIR)

BENCHMARKS := phase_retrieval super_resolution style_transfer portrait_segmentation auto_correction
SPEED_BENCHMARKS := overhead data precision

bench: install        ## every committed (full) benchmark: trains what is missing, hours on 2 cores
	for b in $(BENCHMARKS); do $(PY) benchmarks/$$b.py --full --reuse || exit 1; done
	$(MAKE) bench-speed

bench-speed: install  ## framework overhead, data loading, bf16 vs fp32 (~30 min on 2 idle cores)
	for b in $(SPEED_BENCHMARKS); do WANDB_MODE=offline $(PY) benchmarks/$$b.py || exit 1; done

bench-quick: install  ## every quick table (tiny trainings)
	for b in $(BENCHMARKS); do $(PY) benchmarks/$$b.py || exit 1; done

bench-phase-retrieval bench-super-resolution bench-style-transfer bench-portrait-segmentation bench-auto-correction: install
	$(PY) benchmarks/$(subst -,_,$(patsubst bench-%,%,$@)).py --full --reuse

# A GPU machine with PyTorch + Lightning and no network: `make gpu-bundle` here, copy the checkout with its
# dist/gpu-bundle/ there, then `make bench-gpu` there (GPU_PY: that machine's Python).
BUNDLE ?= dist/gpu-bundle
GPU_PY ?= python3

gpu-bundle: install   ## wheels + data (< 60 MB) for bench-gpu, in $(BUNDLE)
	$(PY) -m scripts.gpu_bundle --out $(BUNDLE)

bench-gpu:            ## on the GPU machine: overhead, data and short trainings (~8 min)
	$(GPU_PY) -c "import hydra, kornia, pydantic, tflite" 2>/dev/null || \
		$(GPU_PY) -m pip install -q --no-index --no-deps $(BUNDLE)/wheels/*.whl
	IMAGING_LAB_SHARED_DATA=$(abspath $(BUNDLE))/shared/data IMAGING_LAB_SHARED_WEIGHTS=$(abspath $(BUNDLE))/shared/weights \
		IMAGING_LAB_DATA=$(abspath $(BUNDLE))/data WANDB_MODE=offline $(GPU_PY) benchmarks/gpu.py --bundle $(BUNDLE)

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache

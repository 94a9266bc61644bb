# The two commands of the README, each doing all the set-up on a fresh machine:
#   make book   build the book into _build/html, executing every notebook at the `cpu` budget
#   make test   run the whole test suite at the `ci` budget (lint, package, notebooks on the
#               emulated GPU device of gencourse.strict_device)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gencourse-installed
MATHJAX := book/_mathjax/mathjax/es5/tex-mml-chtml.js
MATHJAX_VERSION := 3.2.2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: book test test-strict lint sync clean browser malloc sandbox scoreboard timing assignments api release gpu-check gpu-estimate

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[book,test,grading]'
	touch $@

$(MATHJAX):
	rm -rf book/_mathjax && mkdir -p book/_mathjax/mathjax
	cd book/_mathjax && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null \
	  && tar xzf mathjax-$(MATHJAX_VERSION).tgz && mv package/es5 mathjax/es5 \
	  && rm -rf package mathjax-$(MATHJAX_VERSION).tgz

# System programs (tools/system_deps.sh): found under any of their usual names, installed from
# Debian's packages only by root or with passwordless sudo, otherwise the script says what to
# install. A browser (Chromium or Google Chrome) is required for the site check; tcmalloc is an
# optimisation: every training step allocates and frees tensors of a few MB, glibc's malloc hands
# them back to the kernel and faults them in again on the next step, tcmalloc keeps them (same
# arithmetic, less time; measured in commit da3b46f). Without it the notebooks only run slower.
browser:
	@tools/system_deps.sh browser >/dev/null
TCMALLOC = $$(tools/system_deps.sh tcmalloc 2>/dev/null)
malloc:
	@tools/system_deps.sh tcmalloc >/dev/null || true
# bubblewrap: the instructors' quick check that user namespaces work (the grader isolates each
# submission with the same system calls, gencourse/grading/isolation.py); optional.
sandbox:
	@tools/system_deps.sh bubblewrap >/dev/null || true

# Lectures record their headline numbers and wall time into _build/results-<budget> while they
# run; the scoreboard page (book/scoreboard.md) is rendered from them.
# The lectures are executed first into the jupyter-cache that Jupyter Book reads, two at a
# time with one thread each (the fastest use of two cores), longest first by their last
# measured time (tools/execute_book.py); notebooks that did not change since the last build
# are not executed again. The scoreboard page is rendered from the recorded results before the
# one Jupyter Book build, which reads every notebook from the cache.
CACHE := _build/.jupyter_cache
# Networks that several lectures train identically are trained once per build (gencourse.cache).
# The book trains on the bundled MNIST whatever the network (GENCOURSE_OFFLINE=1), so that every
# build computes its numbers from the same data; Colab readers still download the full MNIST.
CPU_ENV := GENCOURSE_BUDGET=cpu GENCOURSE_OFFLINE=1 GENCOURSE_RESULTS=$(CURDIR)/_build/results-cpu \
  GENCOURSE_CACHE=$(CURDIR)/_build/model-cache
book: $(STAMP) $(MATHJAX) browser malloc
	mkdir -p _build
	# jcache asks before creating a new cache: answer it, so that a clean clone builds unattended
	echo y | $(BIN)/jcache notebook -p $(CACHE) add lectures/*.ipynb >/dev/null
	# how fast the machine is today (one thread; its seconds are printed on the timing page)
	GENCOURSE_QUIET=1 $(BIN)/python -m gencourse.report --budget cpu --reference
	env -u MPLBACKEND $(CPU_ENV) OMP_NUM_THREADS=1 LD_PRELOAD=$(TCMALLOC) \
	  $(BIN)/python tools/execute_book.py $(CACHE) --workers 2 --timeout 3600
	$(BIN)/python -m gencourse.report --budget cpu --results _build/results-cpu
	$(CPU_ENV) $(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python tests/site_check.py --html _build/html --require-figures

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two workers, one thread each: two notebooks at a time on the 2-core machine.
# The lecture notebooks run at `ci` with the course's device emulated as Apple's MPS
# (gencourse.strict_device): an operation that mixes the device with CPU tensors, `.numpy()` of a
# device tensor, or float64 on the device fails as it would on a GPU, and the lecture's line is
# named. The arithmetic is the CPU's, bit for bit, so this run replaces the plain `ci` run of the
# notebooks; the package tests under tests/ run on the plain CPU (tests/conftest.py switches the
# mode off for them; tests/test_strict_device.py switches it on itself). The assignments compute
# on the CPU and never ask for the device (tests/test_device_lint.py checks it), so the grader's
# runs of their solutions need no strict mode. The strict run has its own model cache: a network
# trained once per run by the first lecture that needs it, on the emulated device.
STRICT_ENV := GENCOURSE_BUDGET=ci GENCOURSE_STRICT_DEVICE=mps OMP_NUM_THREADS=1 \
  GENCOURSE_CACHE=$(CURDIR)/_build/model-cache-strict
test: $(STAMP) $(MATHJAX) browser sandbox lint
	rm -rf _build/results-ci _build/model-cache-strict
	$(STRICT_ENV) GENCOURSE_REQUIRE_BROWSER=1 GENCOURSE_RESULTS=$(CURDIR)/_build/results-ci \
	  $(BIN)/python -m pytest -n 2 --dist loadfile -q --nbval-lax tests lectures --durations=20 -rs \
	  --junitxml=_build/test-report.xml
	$(BIN)/python -m gencourse.report --budget ci --results _build/results-ci --out _build/scoreboard-ci --check

# The notebooks alone, as `make test` runs them (strict device, `ci`): a quick check after
# editing a lecture.
test-strict: $(STAMP)
	rm -rf _build/model-cache-strict
	$(STRICT_ENV) $(BIN)/python -m pytest -n 2 --dist loadfile -q --nbval-lax lectures

# The reproduction scoreboard (book/scoreboard.md and .json), lectures executed afresh at a
# budget: make scoreboard BUDGET=cpu
BUDGET ?= cpu
scoreboard: $(STAMP)
	$(BIN)/python -m gencourse.report --budget $(BUDGET) --run

# The timing report (book/timing.md): every notebook at `ci` (the tests) and `cpu` (the book),
# with the estimated T4 minutes at `gpu` and `paper` of book/gpu_estimate.json (make gpu-estimate).
timing: test book
	$(BIN)/python -m gencourse.report --budget cpu --timing _build/results-ci _build/results-cpu

# Re-pair every jupytext source with its notebook after editing the .py file.
sync: $(STAMP)
	$(BIN)/jupytext --sync lectures/*.py assignments/*/[0-9][0-9]_*.py

# Regenerate the student notebooks of every assignment (otter assign, reproducible, leak-checked).
assignments: sync
	$(BIN)/python -m gencourse.grading generate

clean:
	rm -rf _build book/_mathjax

# The public API of the current (unreleased) version, recorded in gencourse/_api/<version>.json;
# tests fail when a notebook imports a name that the pinned release lacks.
api: $(STAMP)
	$(BIN)/python tools/release.py --api

# A release: the version bumped everywhere it is named (pyproject, the package, the launch
# buttons, every install cell), the API recorded, the notebooks and student notebooks
# regenerated; prints the tag command. make release VERSION=0.2.0
release: $(STAMP)
	$(BIN)/python tools/release.py $(VERSION)

# Where a GPU is at hand (e.g. a Colab or cloud GPU machine): every lecture at the `gpu` budget,
# any failing assert fails the target; the times and results go to the timing page's `gpu`
# column and to _build/scoreboard-gpu. Then lecture 4 at the opt-in `paper` budget, one setting
# of its Table 1 (the GAN on the grid, its 10 runs as one ensemble, the paper's networks and
# 400,000 updates), stopped after 30 minutes: the measured time per update, extrapolated to the
# setting and to the table, goes to _build/paper-probe.json (compare the timing page's estimate).
gpu-check: $(STAMP)
	@$(BIN)/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu-check needs CUDA')"
	rm -rf _build/results-gpu
	$(BIN)/python -m gencourse.report --budget gpu --run --results _build/results-gpu --out _build/scoreboard-gpu
	$(BIN)/python -m gencourse.gpu_estimate paper-probe --seconds 1800 --out _build/paper-probe.json
	$(BIN)/python -m gencourse.report --budget cpu --timing _build/results-ci _build/results-cpu _build/results-gpu

# The timing page's estimated columns without a GPU (book/gpu_estimate.json, read by `make
# timing`): every lecture at `ci`, one at a time, with the work of every training loop counted
# (gencourse.gpu_estimate: FLOPs, bytes, kernel launches per step), then the loops' lengths at
# `gpu` and `paper` from the lectures' budget(...) calls and a model of a Colab T4. About twice
# the lectures' `ci` time.
gpu-estimate: $(STAMP)
	rm -rf _build/flops-ci
	OMP_NUM_THREADS=1 $(BIN)/python -m gencourse.gpu_estimate run lectures/*.ipynb --out _build/flops-ci
	$(BIN)/python -m gencourse.gpu_estimate estimate --records _build/flops-ci --out book/gpu_estimate.json

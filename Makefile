# The two commands of the README, each doing all the set-up on a fresh machine:
#   make book   build the book into _build/html, executing every notebook at the `cpu` budget
#   make test   run the whole test suite at the `ci` budget (lint, package, notebooks)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gencourse-installed
MATHJAX := book/_mathjax/mathjax/es5/tex-mml-chtml.js
MATHJAX_VERSION := 3.2.2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: book test lint sync clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[book,test]'
	touch $@

$(MATHJAX):
	rm -rf book/_mathjax && mkdir -p book/_mathjax/mathjax
	cd book/_mathjax && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null \
	  && tar xzf mathjax-$(MATHJAX_VERSION).tgz && mv package/es5 mathjax/es5 \
	  && rm -rf package mathjax-$(MATHJAX_VERSION).tgz

book: $(STAMP) $(MATHJAX)
	GENCOURSE_BUDGET=cpu $(BIN)/jupyter-book build . -W -n --keep-going

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) lint
	GENCOURSE_BUDGET=ci $(BIN)/python -m pytest -n 2 --dist loadfile -q \
	  --nbval-lax tests lectures --durations=15

# Re-pair every jupytext source with its notebook after editing the .py file.
sync: $(STAMP)
	$(BIN)/jupytext --sync lectures/*.py

clean:
	rm -rf _build book/_mathjax

# cijob-operator: developer entry points. `make test` is the one CI runs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CLUSTER := .cluster
export PYTHONPATH := $(CURDIR)/operator:$(CURDIR)/tests:$(CURDIR)

.PHONY: venv testground cluster-up cluster-down test unit lint crds demo bench clean

# The Python virtual environment, rebuilt when pyproject.toml changes.
$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@
venv: $(BIN)/.installed

# Go builds of kube-apiserver, kube-controller-manager, kubectl, etcd and helm (cached in ~/.cache).
testground:
	tests/cluster/build.sh $(CLUSTER)/bin

cluster-up: venv testground
	$(BIN)/python -m testground up

cluster-down: venv
	$(BIN)/python -m testground down

crds: venv
	$(BIN)/cijob crd --output crds/

lint: venv
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit -q

# Every test: lint, unit tests and the integration tests against the real control plane.
test: venv testground lint
	$(BIN)/pytest -q

# Starts the embedded control plane, runs the operator and the seed's examples, shows progress.
# DEMO_ARGS=--use-current-context uses the cluster of $KUBECONFIG instead.
demo: venv testground
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

# The benchmark of bench/ against the test ground (see bench/README.md).
bench: venv testground
	$(BIN)/python -m bench $(BENCH_ARGS)

clean: cluster-down
	rm -rf $(VENV) $(CLUSTER)

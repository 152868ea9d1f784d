# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# extra options of `salesmon run`, e.g. make run RUN_ARGS='--scenario promo_shift' or '--verbose'
RUN_ARGS ?=
# the suite in two processes, a module's tests and the modules that share a built warehouse in the
# same one (tests/conftest.py); PYTEST_ARGS= runs it in one
PYTEST_ARGS ?= -n 2

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1

.PHONY: install run test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --quiet -e '.[dev,dask]'
	touch $(STAMP)

run: install
	$(BIN)/salesmon run $(RUN_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
# sqlfluff's dbt templater connects to the warehouse (dbt's relation cache): start it first, and
# stop it after when lint started it (`make test` leaves no server running).
# Every model, analysis and singular test; macros are linted in the compiled SQL of the models that
# call them: the dbt templater skips a macro file itself ("because it is a macro": its
# `{% macro %}` definitions render to no SQL), so macros/ is in .sqlfluffignore.
	@running=no; $(BIN)/salesmon db status >/dev/null 2>&1 && running=yes; \
	$(BIN)/salesmon db start && (cd dbt_project && ../$(BIN)/sqlfluff lint models analyses tests); \
	status=$$?; [ $$running = yes ] || $(BIN)/salesmon db stop >/dev/null; exit $$status

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) lint

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench.bench_generate_load
	$(BIN)/python -m bench.bench_sql_landing
	$(BIN)/python -m bench.bench_model
	$(BIN)/python -m bench.bench_monitoring
	$(BIN)/python -m bench.bench_calibration
	$(BIN)/python -m bench.acceptance_alerts

clean:
	-$(BIN)/salesmon db stop
	rm -rf .salesmon dbt_project/target dbt_project/logs

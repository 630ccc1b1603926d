# One set of commands for people, CI and hooks. `make run` and `make test` do all the set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint kannel chromium screenshots bench bench-vs-jasmin bench-vs-kannel clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: install
	$(BIN)/batgate serve --demo $(ARGS)

# Integration and end-to-end tests run on SQLite and on PostgreSQL (BATGATE_TEST_BACKENDS
# picks; default both): PostgreSQL is started, or installed, when it is missing. With
# both, scripts/run-tests runs the two backends' tests side by side.
BATGATE_TEST_BACKENDS ?= sqlite,postgresql
export BATGATE_TEST_BACKENDS

test: install kannel chromium
	@case "$(BATGATE_TEST_BACKENDS)" in *postgresql*) scripts/ensure-postgres ;; esac
	scripts/run-tests

# The Kannel tests (tests/e2e/test_kannel.py) and bench (bench/kannel.py) run Debian's
# bearerbox and smsbox: the package is installed when missing (its own service, if the
# package starts one, is stopped: tests and bench start Kannel themselves, on free ports).
kannel:
	@command -v bearerbox >/dev/null || test -x /usr/sbin/bearerbox || ( \
		echo "installing Kannel (Debian package) ..." >&2 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kannel >/dev/null && \
		(systemctl disable --now kannel >/dev/null 2>&1 || service kannel stop >/dev/null 2>&1 || true))

# The console's browser tests (tests/e2e/test_console.py) and `make screenshots` drive
# Debian's chromium through Playwright (no browser download): installed when missing.
chromium:
	@command -v chromium >/dev/null || ( \
		echo "installing chromium (Debian package) ..." >&2 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# The console's pages as PNGs for docs/console.md.
screenshots: install chromium
	$(BIN)/python scripts/screenshots.py

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy src

# The benchmarks on SQLite and on PostgreSQL (scripts/ensure-postgres starts the local
# server, as for the tests); BENCH_ARGS passes options to bench/run.py, e.g. --quick.
bench: install kannel
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	scripts/ensure-postgres
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# batgate against Jasmin on this machine (docs/benchmarks.md): installs Jasmin into
# bench/jasmin/.work/ (ignored), and matplotlib for the chart, when they are missing.
bench-vs-jasmin: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	@$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet --disable-pip-version-check matplotlib
	$(BIN)/python bench/vs_jasmin.py $(BENCH_ARGS)

# batgate against Kannel on this machine (docs/benchmarks.md): installs Debian's kannel
# (the `kannel` target), wrk and matplotlib for the chart, when they are missing.
bench-vs-kannel: install kannel
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	@$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet --disable-pip-version-check matplotlib
	$(BIN)/python bench/vs_kannel.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist

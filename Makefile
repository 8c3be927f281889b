# Two commands are the whole setup: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint typecheck pytest browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/shipledger demo --if-empty
	$(BIN)/shipledger serve

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy --strict

# The browser tests drive Debian's Chromium (never a downloaded one); install it when missing
# and we may (root, apt); otherwise those tests say loudly why they are skipped.
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "!!! Chromium not installed: browser tests will be skipped (failed under CI)"; }

pytest: install browser
	$(BIN)/python -m pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV)

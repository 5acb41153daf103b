# The README's commands. Everything installs itself on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup browser run test synth lint bench clean deploy bootstrap lock

setup: $(VENV)/.installed node_modules/.installed

# The console's browser tests drive Debian's chromium and chromedriver (never a downloaded browser):
# installed here when missing and root (CI), else said how to; without them the tests skip locally
# and fail in CI (CI=true).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; \
	else echo "note: the console's browser tests need chromium and chromedriver: sudo apt-get install chromium chromium-driver"; fi

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt -c constraints.txt
	touch $@

# constraints.txt: every transitive version, from a fresh venv (after changing requirements*.txt)
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	{ sed -n '1,3p' constraints.txt; .venv-lock/bin/python -m pip freeze; } > constraints.txt.new && mv constraints.txt.new constraints.txt
	rm -rf .venv-lock

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

synth: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" npx cdk synth --quiet

# make run                       the bundled sample (data/abalone.csv)
# make run DATA=my.csv [TARGET=column] [STACK=Name]   your own table, offline
run: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m emulator run $(if $(DATA),--data "$(DATA)" $(if $(TARGET),--target "$(TARGET)") $(if $(STACK),--stack "$(STACK)"),--sample)

# The CDK CLI runs `python3 app.py`: the venv's python must come first on PATH.
bootstrap: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" npx cdk bootstrap

deploy: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" npx cdk deploy $(CDK_ARGS)

# Two workers (pytest-xdist): most tests wait on local jobs, endpoints and servers, so two share the
# cores well; TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
test: setup browser
	$(PY) -m pytest -q -n $(TEST_WORKERS)

lint: setup
	$(PY) -m ruff check .

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf cdk.out cdk.out.* .emulator .pytest_cache

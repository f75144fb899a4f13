# Two commands on a fresh machine: `make run` (the demo pipeline) and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed

.PHONY: run test venv lock lint format clean report bench

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --profile workflow/profiles/default

test: $(STAMP)
	$(BIN)/pytest -q

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PY) >/dev/null || { echo "pannet needs $(PY) on PATH (or: make PY=/path/to/python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

lock:
	uv pip compile --python-version 3.11 --generate-hashes requirements.in -o requirements.lock

lint: $(STAMP)
	$(BIN)/ruff check src workflow/scripts tests benchmarks
	$(BIN)/ruff format --check src workflow/scripts tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules

format: $(STAMP)
	$(BIN)/ruff format src workflow/scripts tests benchmarks
	$(BIN)/snakefmt Snakefile workflow/rules

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --profile workflow/profiles/default --report results/report/snakemake_report.html

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf results .snakemake

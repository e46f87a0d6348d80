# kbench: `make demo` runs every notebook (smoke profile), `make test` runs the test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kbench-installed

.PHONY: demo test test-browser lab bench setup clean

setup: $(STAMP)

# torch first: the CPU wheel, unless a torch (e.g. a CUDA build) is already there.
# WordNet 3.0 comes from Debian (wordnet-base, wordnet-sense-index): installed when we may, else a hint.
$(STAMP): pyproject.toml
	test -f /usr/share/wordnet/index.sense || apt-get install -y -q wordnet-base wordnet-sense-index >/dev/null 2>&1 \
		|| echo "note: WordNet needs \`sudo apt-get install wordnet-base wordnet-sense-index\`"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name kbench --display-name "Python (kbench)" >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kbench run --profile smoke

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_kbert.py
	$(BIN)/python benchmarks/bench_pretrain.py
	$(BIN)/python benchmarks/bench_skep_kglm.py

# Headless Chromium (Debian package `chromium`: installed here when we may, else a hint) driven by Playwright:
# every notebook run live in JupyterLab (screenshots and executed notebooks under runs/live), the offline export.
test-browser: $(STAMP)
	command -v chromium >/dev/null || apt-get install -y -q chromium >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) \
		|| echo "note: the browser tests need Debian's Chromium: \`sudo apt-get install chromium\`"
	$(BIN)/python -c "import playwright, jupyterlab" 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[browser]"
	$(BIN)/python -m pytest -m browser tests/browser

lab: $(STAMP)
	$(BIN)/python -c "import jupyterlab" 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[lab]"
	$(BIN)/kbench lab

clean:
	rm -rf runs .pytest_cache

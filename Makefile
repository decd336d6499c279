# The doors: `make run`, `make test`, `make bench`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WORKSPACE ?= workspace
STAMP := $(VENV)/.installed

.PHONY: run test test-fast test-browser bench lint demo clean-workspace

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $(STAMP)

# The demo model starts training in the background (once; never over a user's dataset or runs).
run: $(STAMP)
	$(PY) -m core demo-workspace $(WORKSPACE) --train
	CXR_WORKSPACE=$(WORKSPACE) $(PY) -m streamlit run streamlit_app.py

# Test files run on TEST_WORKERS processes (pytest-xdist; a file stays on one worker, so its
# fixtures and servers are its own): 10:41 with 2 against 14:03 with 1 on 2 cores.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

# The fast lane: everything not marked slow (no training, no app, no browser); under a minute.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# The Playwright + Chromium walk of the app at 1280x720 (needs Debian's chromium).
test-browser: $(STAMP)
	$(PY) -m pytest tests/app/test_browser.py

bench: $(STAMP)
	$(PY) -m benchmarks $(if $(QUICK),--quick,)

lint: $(STAMP)
	$(PY) -m ruff check core pages tests benchmarks streamlit_app.py

demo: $(STAMP)
	$(PY) -m core demo-workspace $(WORKSPACE)

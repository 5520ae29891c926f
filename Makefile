# Everything a newcomer needs: `make demo` and `make test`. Both set up .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The real data lives beside the project (see README); override with MISTRAL_VISION_DATA=...
export MISTRAL_VISION_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: setup browser demo test bench clean

setup: $(VENV)/.installed browser

# The CPU torch wheel goes in first: a plain `pip install torch` (or a dependency asking for
# torch) would otherwise pull the multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

# The web demo's browser test drives the distribution's Chromium, never one an install step
# downloads: installed here when missing (as root, with apt-get); otherwise that test skips and says why.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	    || echo "note: apt-get could not install chromium + chromium-driver; the browser test will skip"; \
	else echo "note: no chromium + chromedriver (as root: apt-get install chromium chromium-driver);" \
	  "the browser test will skip"; fi

# Both routes, each for a couple of minutes: ASCII art in the prompt, then a LLaVA tower + projector.
demo: setup
	$(BIN)/mistral-vision run configs/demo.yaml
	$(BIN)/mistral-vision run configs/demo-llava.yaml
	@echo "chat: runs/demo-llava, examples/mnist/7.png, \"Which digit is this?\""
	@$(BIN)/mistral-vision chat runs/demo-llava --image examples/mnist/7.png "Which digit is this?"

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache

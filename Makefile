# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PROBE := $(VENV)/bin/probe

.PHONY: install demo test test-fast lint docs docs-examples bench conformance mutate plant clean report-png

$(PROBE): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(PROBE)

install: $(PROBE)

demo: install
	$(PROBE) invert "a red star" "a blue circle" --seeds 0-1
	$(PROBE) neighbours "star" --k 8
	$(PROBE) shuffle-test "a red circle left of a blue square"

# pytest's temporary folders go under .pytest-tmp/ (git-ignored), one new folder per run, so two runs at
# once never delete each other's; a passing run removes its own, a failing one leaves it to look into.
PYTEST = mkdir -p .pytest-tmp && tmp=$$(mktemp -d .pytest-tmp/run-XXXXXX) \
	&& $(PY) -m pytest --basetemp=$$tmp
# `make test TESTS="tests/core/test_io.py -x"` passes a subset and options through to pytest.
test: install
	$(PYTEST) $(TESTS) && rm -rf $$tmp

# The fast tier: everything but the tests marked slow (training, subprocess kills, installs, docs site,
# notebook); docs/testing.md gives both tiers' times. CI runs everything.
test-fast: install
	$(PYTEST) -m "not slow" $(TESTS) && rm -rf $$tmp

# Static checks (CI runs them before the tests; settings in pyproject.toml): lint, formatting, types.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The documentation site into site/ (open site/index.html; nothing is fetched at build or view time).
# --strict: a broken link, a missing page or a docstring that does not render is an error, as in CI.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# Every example of README.md and docs/**/*.md, page by page in fresh folders (tens of minutes on CPU).
docs-examples: install
	PROBE_DOCS_EXAMPLES=1 $(PY) -m pytest tests/test_docs_examples.py -q

# A small audit of the built-in model (docs/examples/report-demo.yaml), its HTML report, and report.png:
# the report as headless Chromium shows it, full page (needs `apt-get install chromium`). A rerun reuses
# the finished run (--resume) and only rebuilds the report and the picture.
REPORT_RUN := probe-out/runs/report-demo
report-png: install
	$(PROBE) -o probe-out run docs/examples/report-demo.yaml --resume
	$(PROBE) report $(REPORT_RUN)
	$(PY) tools/chromium.py $(REPORT_RUN)/report.html report.png

# Mutation testing (minutes per module; not run by CI): `make mutate` or `make mutate MODULES="plugins/probe_audit/stats.py"`.
# Surviving mutants go to mutation-report.md; scratch copy and caches under .mutate/.
mutate: install
	$(PY) -m pip install -q -e ".[mutation]"
	$(PY) tools/mutate.py $(MODULES)

# Planted bugs (minutes; not run by CI): each patch of tests/planted/ in a scratch copy, its tests against it;
# `make plant PATCHES="05-encoding-image-bf16-cast-dropped"` for a few. The table goes to plant-report.md.
plant: install
	$(PY) tools/plant.py $(PATCHES)

bench: install
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

# Every open_clip family at real sizes (tens of minutes on 2 CPU cores), then the slow test cases.
conformance: install
	$(PY) benchmarks/conformance.py
	PROBE_SLOW_TESTS=1 $(PY) -m pytest tests/models -q

clean:
	rm -rf $(VENV) probe-out .pytest_cache .pytest-tmp .mutate plant-report.md site report.png .mypy_cache .ruff_cache

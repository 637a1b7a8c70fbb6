# clipline pipeline: stages wired as file targets, so reruns are incremental.
#
# Targets (make -f pipeline.mk TARGET):
#   default     the embedded default: synthetic scenes, zero-shot retrieval of the base
#               model, LoRA fine-tune, retrieval again, a before/after table,
#               out/default/report.json and out/default/report.html
#   all         the same as default, and what make with no target runs
#   siglip      the default's run with the embedded SigLIP (testdata/siglip-base-model):
#               LoRA fine-tune with the sigmoid loss, the same table, in out/siglip
#   test        go vet + go test ./... and a smoke run of the stages
#   smoke       a few dozen rows through every stage (part of test)
#   data        the synthetic streams under data/
#   tutorial    vembed-factory's tutorial config, unchanged, on the synthetic scenes
#               written as its JSONL (data/tutorial): train prepares the data itself
#   serve       after the default: the test images indexed with the fine-tuned model and
#               with the base model, served side by side (serve --compare) on ADDR:
#               open http://ADDR/ to search them; Ctrl-C stops it
#   build       the stage binaries in bin/
#   base-model  re-pretrain testdata/base-model from random weights
#   siglip-base-model  re-pretrain testdata/siglip-base-model from random weights (needs
#               Debian's sentencepiece for spm_train)
#   cuda        stage binaries with the CUDA backend (docs/cuda.md)
#   vet-cuda    go vet and build -tags cuda where the CUDA headers are (part of test)
#   test-turbojpeg  go vet + go test -tags turbojpeg of the decode path (part of test)
#   kernels     regenerate the committed PTX from kernels/*.cu
#   clean       remove bin/, data/ and out/
#   help        this text
#
# Variables (make -f pipeline.mk VAR=value):
#   DEVICE      cpu (default) or cuda: train and embed on the GPU; needs `make cuda` binaries
#   IMAGES      size of the synthetic dataset (default 1500)
#   SEED        seed of the synthetic dataset (default 7)
#   ADDR        serve's listening address (default 127.0.0.1:8080)
#   CUDA_ROOT   folder holding usr/include/cuda.h for cuda and vet-cuda ($CLIPLINE_CUDA_ROOT, else /usr)
#   GO          the go command (default go)
#   TAGS        Go build tags for the stages, e.g. TAGS=turbojpeg: decode JPEGs with
#               libjpeg-turbo (needs libturbojpeg0-dev; docs/decode.md)

SHELL       := /bin/bash
.SHELLFLAGS := -eo pipefail -c
GO          ?= go
BIN         := bin
STAGES      := prepare tokenize decode train embed rank report index serve
BINS        := $(addprefix $(BIN)/,$(STAGES))
DATA        := data
# OUT, MODEL, FINETUNE and PIX are what `siglip` sets to run the default's
# recipes on the SigLIP model.
OUT         := out/default
MODEL       := testdata/base-model
FINETUNE    := examples/default-finetune.yaml
PIX         := $(DATA)/scenes.pix.arrow
SEED        ?= 7
IMAGES      ?= 1500
DEVICE      ?= cpu
ADDR        ?= 127.0.0.1:8080

.PHONY: all default siglip serve test test-turbojpeg smoke data build clean cuda kernels vet-cuda base-model siglip-base-model tutorial help FORCE
.DELETE_ON_ERROR:
.SECONDARY:

all: default

# help prints the comment block this file starts with.
help:
	@sed -n '/^#/!q; s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

# A binary is replaced only when it changed (go build rewrites even an
# up-to-date one), so targets that depend on a binary rerun only when its
# code really changed.
$(BIN)/%: FORCE
	@mkdir -p $(BIN)
	@$(GO) build $(if $(TAGS),-tags $(TAGS)) -o $@.new ./$* && if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

build: $(BINS)

# ---- the embedded default ----------------------------------------------------
# Data: the synthetic `scenes` domain, tokenized and decoded for the base model
# (PIX: each model has its own tokens and pixels).
$(DATA)/scenes.prep.arrow: $(BIN)/prepare
	@mkdir -p $(DATA)
	$(BIN)/prepare synthetic --domain scenes --seed $(SEED) --images $(IMAGES) \
		--render-dir $(DATA)/scenes-images --out $@

$(PIX): $(DATA)/scenes.prep.arrow $(BIN)/tokenize $(BIN)/decode $(MODEL)/model.safetensors
	$(BIN)/tokenize --model $(MODEL) --in $< | $(BIN)/decode --model $(MODEL) --out $@

data: $(PIX)

# Retrieval on the test split before and after the LoRA fine-tune.
# Each rank also keeps every query's top 10 (*.results.arrow) for the HTML report.
$(OUT)/zero_shot.json $(OUT)/zero_shot.results.arrow &: $(PIX) $(BIN)/embed $(BIN)/rank
	@mkdir -p $(OUT)
	$(BIN)/embed --model $(MODEL) --device $(DEVICE) --split test --in $< \
		| $(BIN)/rank --top-k 10 --results $(OUT)/zero_shot.results.arrow --out $(OUT)/zero_shot.json

$(OUT)/run/final/model.safetensors: $(PIX) $(BIN)/train $(FINETUNE)
	rm -rf $(OUT)/run
	$(BIN)/train --model $(MODEL) --device $(DEVICE) --config $(FINETUNE) --in $< --out $(OUT)/run

$(OUT)/fine_tuned.json $(OUT)/fine_tuned.results.arrow &: $(OUT)/run/final/model.safetensors $(BIN)/embed $(BIN)/rank
	$(BIN)/embed --model $(OUT)/run/final --device $(DEVICE) --split test --in $(PIX) \
		| $(BIN)/rank --top-k 10 --results $(OUT)/fine_tuned.results.arrow --out $(OUT)/fine_tuned.json

# The report times the run that made it: `default` stamps the start, then makes
# it (an up-to-date report keeps the time of the run that made it). The HTML
# report beside it shows galleries of both results and the training curves.
$(OUT)/report.json $(OUT)/report.html &: $(OUT)/zero_shot.json $(OUT)/fine_tuned.json $(BIN)/report
	$(BIN)/report --zero-shot $(OUT)/zero_shot.json --fine-tuned $(OUT)/fine_tuned.json \
		$(if $(wildcard $(OUT)/started),--started $(OUT)/started) --out $(OUT)/report.json \
		--html $(OUT)/report.html --zero-shot-results $(OUT)/zero_shot.results.arrow \
		--fine-tuned-results $(OUT)/fine_tuned.results.arrow --paths-from $(DATA)/scenes.prep.arrow --run $(OUT)/run

default:
	@mkdir -p $(OUT)
	@date +%s.%N > $(OUT)/started
	@$(MAKE) -f pipeline.mk --no-print-directory $(OUT)/report.json
	@echo "report: $(OUT)/report.json"
	@echo "report: $(OUT)/report.html"

# The same run on the embedded SigLIP: its own tokens and pixels (SentencePiece,
# 64 px bilinear without crop), a LoRA fine-tune with the sigmoid loss.
SIGLIP_MODEL := testdata/siglip-base-model
siglip:
	@$(MAKE) -f pipeline.mk --no-print-directory default OUT=out/siglip MODEL=$(SIGLIP_MODEL) \
		FINETUNE=examples/siglip-finetune.yaml PIX=$(DATA)/scenes.siglip.pix.arrow

# ---- search: the default's test images, served ------------------------------------
# The fine-tuned model's test split indexed with the run's report (which
# /v1/info shows), and the base model's as the compare index, so the page
# shows zero-shot and fine-tuned results side by side. Image paths in the
# bundles are relative to this folder, where serve runs.
INDEX      := $(OUT)/index
BASE_INDEX := $(OUT)/index-base

$(INDEX)/manifest.json: $(OUT)/report.json $(BIN)/embed $(BIN)/index
	$(BIN)/embed --model $(OUT)/run/final --device $(DEVICE) --split test --in $(PIX) \
		| $(BIN)/index --report $(OUT)/report.json --out $(INDEX)

$(BASE_INDEX)/manifest.json: $(PIX) $(BIN)/embed $(BIN)/index $(MODEL)/model.safetensors
	$(BIN)/embed --model $(MODEL) --device $(DEVICE) --split test --in $< | $(BIN)/index --out $(BASE_INDEX)

serve: $(INDEX)/manifest.json $(BASE_INDEX)/manifest.json $(BIN)/serve
	$(BIN)/serve --model $(OUT)/run/final --index $(INDEX) --compare $(BASE_INDEX) --device $(DEVICE) --addr $(ADDR)

# ---- vembed-factory's tutorial config -------------------------------------------
# examples/tutorial_clip_text_to_image.yaml as the tutorial has it, run the way
# vembed-factory runs it (`python run.py FILE`): train reads data_path and
# val_data_path itself, prepares them for the model and caches the result
# (~/.cache/clipline/data), so a rerun starts at once. The data is the synthetic
# scenes in the tutorial's layout (train.jsonl, val.jsonl, images/). Overrides,
# for a run offline in a minute: --model the bundled base model instead of
# openai/clip-vit-base-patch32, --out under out/ (--overwrite replaces the last
# run), and the data keys naming data/tutorial instead of data/flickr30k.
TUTORIAL := $(DATA)/tutorial
# Order-only on prepare: a rebuilt binary does not re-render the images (whose
# new times would miss the cache).
$(TUTORIAL)/train.jsonl: | $(BIN)/prepare
	$(BIN)/prepare synthetic --domain scenes --seed $(SEED) --images $(IMAGES) \
		--render-dir $(TUTORIAL)/images --jsonl $(TUTORIAL)

tutorial: $(TUTORIAL)/train.jsonl $(BIN)/train
	$(BIN)/train --config examples/tutorial_clip_text_to_image.yaml --model $(MODEL) --device $(DEVICE) \
		--out out/tutorial --overwrite --set data_path=$(TUTORIAL)/train.jsonl \
		--set val_data_path=$(TUTORIAL)/val.jsonl --set image_root=$(TUTORIAL)

# ---- the base model: pretrained by clipline itself -----------------------------
# A small CLIP (testdata/base-model-config) trained from random weights on the
# synthetic `general` domain, with a vocabulary learned from synthetic captions.
BASE_WORK := out/base-work
$(DATA)/general.prep.arrow: $(BIN)/prepare
	@mkdir -p $(DATA)
	$(BIN)/prepare synthetic --domain general --seed 11 --images 3000 \
		--render-dir $(DATA)/general-images --out $@

# pretrain,WORK,YAML,MODEL_DIR,FILES: the pretraining both base models share,
# once WORK holds the config and vocabulary: the general images tokenized and
# decoded for it, trained from random weights, and FILES of the final model
# moved into MODEL_DIR whole.
define pretrain
	$(BIN)/tokenize --model $(1) --in $(DATA)/general.prep.arrow \
		| $(BIN)/decode --model $(1) --out $(1)/general.pix.arrow
	$(BIN)/train --model $(1) --from-scratch --config $(2) --in $(1)/general.pix.arrow --out $(1)/run
	rm -rf $(3).tmp && mkdir -p $(3).tmp
	cp $(addprefix $(1)/run/final/,$(4)) $(3).tmp/
	rm -rf $(3) && mv $(3).tmp $(3)
endef

base-model: $(DATA)/general.prep.arrow $(DATA)/scenes.prep.arrow $(BIN)/tokenize $(BIN)/decode $(BIN)/train
	rm -rf $(BASE_WORK) && mkdir -p $(BASE_WORK)
	cp testdata/base-model-config/*.json $(BASE_WORK)/
	$(BIN)/tokenize learn --captions-from $(DATA)/general.prep.arrow \
		--captions-from $(DATA)/scenes.prep.arrow --split train --vocab-size 1024 --out $(BASE_WORK)
	$(call pretrain,$(BASE_WORK),examples/base-model.yaml,$(MODEL),config.json model.safetensors vocab.json merges.txt preprocessor_config.json)

# The SigLIP base model the same way (testdata/siglip-base-model-config), with a
# SentencePiece unigram vocabulary that spm_train learns from the same captions
# (256 pieces: the synthetic captions allow no more than ~280), in SigLIP's
# layout: <pad> 0, </s> 1 (end and padding), <unk> 2, no <s>; one thread, so
# that the model is the same on every run.
SIGLIP_WORK := out/siglip-base-work
siglip-base-model: $(DATA)/general.prep.arrow $(DATA)/scenes.prep.arrow $(BIN)/tokenize $(BIN)/decode $(BIN)/train
	@command -v spm_train >/dev/null || { echo "siglip-base-model: needs spm_train (apt-get install sentencepiece)" >&2; exit 1; }
	rm -rf $(SIGLIP_WORK) && mkdir -p $(SIGLIP_WORK)
	cp testdata/siglip-base-model-config/*.json $(SIGLIP_WORK)/
	$(GO) run ./scripts/captions --split train $(DATA)/general.prep.arrow $(DATA)/scenes.prep.arrow > $(SIGLIP_WORK)/corpus.txt
	spm_train --input=$(SIGLIP_WORK)/corpus.txt --model_prefix=$(SIGLIP_WORK)/spiece --vocab_size=256 \
		--model_type=unigram --character_coverage=1.0 --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 \
		--num_threads=1 --minloglevel=1
	$(call pretrain,$(SIGLIP_WORK),examples/siglip-base-model.yaml,$(SIGLIP_MODEL),config.json model.safetensors spiece.model tokenizer_config.json special_tokens_map.json preprocessor_config.json)

# ---- CUDA ----------------------------------------------------------------------
# CUDA_ROOT: a folder holding usr/include/cuda.h (Debian's nvidia-cuda-dev,
# installed, or extracted with dpkg -x as .ci/run does); empty means /usr.
CUDA_ROOT ?= $(CLIPLINE_CUDA_ROOT)
CUDA_ENV  := CGO_ENABLED=1 $(if $(CUDA_ROOT),CGO_CFLAGS="-I$(abspath $(CUDA_ROOT))/usr/include" CGO_LDFLAGS="-L$(abspath $(CUDA_ROOT))/usr/lib/x86_64-linux-gnu/stubs")
HAVE_CUDA := $(wildcard $(if $(CUDA_ROOT),$(CUDA_ROOT),)/usr/include/cuda.h)

cuda:
	@mkdir -p $(BIN)
	$(CUDA_ENV) $(GO) build -tags cuda -o $(BIN)/ $(addprefix ./,$(STAGES))

kernels:
	$(MAKE) -C kernels

# The tagged build is compiled and vetted wherever the headers are, GPU or not.
vet-cuda:
ifeq ($(HAVE_CUDA),)
	@echo "vet-cuda: skipped, no cuda.h (install nvidia-cuda-dev or set CUDA_ROOT)"
else
	$(CUDA_ENV) $(GO) vet -tags cuda ./...
	$(CUDA_ENV) $(GO) build -tags cuda ./...
endif

# ---- tests ---------------------------------------------------------------------
# cudaemu runs the CUDA backend and the real kernels on a CPU emulation of
# the device (C++20), so they are tested where no GPU is; without g++ they
# skip, unless CLIPLINE_REQUIRE_CUDAEMU=1 (CI sets it).
test:
	$(GO) vet ./...
	$(GO) test ./...
	@if command -v g++ >/dev/null; then $(GO) test -short -tags cudaemu ./internal/backend/cuda/; \
	elif [ "$$CLIPLINE_REQUIRE_CUDAEMU" = 1 ]; then \
		echo "test: CUDA emulator tests need g++ (CLIPLINE_REQUIRE_CUDAEMU=1)" >&2; exit 1; \
	else echo "test: CUDA emulator tests skipped (no g++)"; fi
	@$(MAKE) -f pipeline.mk --no-print-directory test-turbojpeg
	@$(MAKE) -f pipeline.mk --no-print-directory vet-cuda
	@$(MAKE) -f pipeline.mk --no-print-directory smoke

# The libjpeg-turbo build of the decode path (-tags turbojpeg, docs/decode.md):
# vetted and tested where its header is; skipped without it, unless
# CLIPLINE_REQUIRE_TURBOJPEG=1 (CI sets it), which the tagged test also checks.
TURBOJPEG_PKGS := ./internal/imageproc/... ./internal/decode/ ./decode/
test-turbojpeg:
	@if [ -f /usr/include/turbojpeg.h ]; then \
		$(GO) vet -tags turbojpeg $(TURBOJPEG_PKGS) && $(GO) test -tags turbojpeg $(TURBOJPEG_PKGS); \
	elif [ "$$CLIPLINE_REQUIRE_TURBOJPEG" = 1 ]; then \
		echo "test: the turbojpeg build needs libturbojpeg0-dev (CLIPLINE_REQUIRE_TURBOJPEG=1)" >&2; exit 1; \
	else echo "test: turbojpeg tests skipped (no /usr/include/turbojpeg.h: apt-get install libturbojpeg0-dev)"; fi

# A few dozen rows through every stage, piped as users do; the images travel
# inside the stream (--embed-images), so their files are removed before decode.
SMOKE := out/smoke
smoke: $(BINS)
	rm -rf $(SMOKE) && mkdir -p $(SMOKE)
	$(BIN)/prepare synthetic --domain scenes --seed 3 --images 40 --render-dir $(SMOKE)/images --embed-images \
		> $(SMOKE)/prep.arrows && rm -r $(SMOKE)/images
	$(BIN)/tokenize --model $(MODEL) --in $(SMOKE)/prep.arrows \
		| $(BIN)/decode --model $(MODEL) --compress zstd > $(SMOKE)/pix.arrows
	$(BIN)/train --model $(MODEL) --config examples/default-finetune.yaml --set epochs=1 \
		--set batch_size=16 --in $(SMOKE)/pix.arrows --out $(SMOKE)/run
	$(BIN)/embed --model $(SMOKE)/run/final --in $(SMOKE)/pix.arrows | tee $(SMOKE)/emb.arrows \
		| $(BIN)/rank --out $(SMOKE)/metrics.json
	$(BIN)/index --split test --faiss --out $(SMOKE)/index < $(SMOKE)/emb.arrows
	@grep -q '"t2i"' $(SMOKE)/metrics.json && grep -q '"kind": "images"' $(SMOKE)/index/manifest.json \
		&& echo "smoke: all stages ran ($(SMOKE)/metrics.json, $(SMOKE)/index)"

clean:
	rm -rf $(BIN) $(DATA) out

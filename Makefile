# SPDX-License-Identifier: GPL-2.0
#
# coco-accept: confidential device acceptance for Linux 7.3, in Rust.
# See README.md.  The kernel source and build output live in the cache
# (COCO_CACHE, default ${XDG_CACHE_HOME:-~/.cache}/coco-accept).

SHELL := /bin/bash
T := tools/testing/devsec
FLAVOUR ?= normal

.PHONY: all run test check bench fuzz apply series series-check setup fetch prepare build print-kdir clean help

all: help

help:
	@echo "make run         build, boot and show the acceptance life cycle"
	@echo "make test        every test (both flavours, build variants, checks)"
	@echo "make check       host-side static checks against the normal build"
	@echo "make bench       latency, scaling and hot-path benchmarks -> bench/results.md"
	@echo "make fuzz        coverage-guided fuzzing of the TDISP library (FUZZ_SECONDS per target)"
	@echo "make series      export a git format-patch series on the pinned base to out/series"
	@echo "make apply KSRC=/path/to/linux-7.3   apply the overlay to your own tree"
	@echo "make build       build FLAVOUR (normal|debug|nocc|norust)"
	@echo "make print-kdir  print FLAVOUR's kernel build directory"
	@echo "make clean       remove the build output (keeps the pristine source)"

run:
	@$(T)/run.sh

test:
	@$(T)/test.sh

bench:
	@$(T)/bench.sh

fuzz: setup
	@$(T)/fuzz.sh

setup:
	@$(T)/setup.sh

fetch: setup
	@$(T)/fetch-kernel.sh

prepare: fetch
	@. $(T)/common.sh && python3 $(T)/prepare-tree.py "$$OVERLAY" "$$PRISTINE" "$$KSRC"

build: prepare
	@$(T)/build.sh $(FLAVOUR)

check: prepare
	@$(T)/build.sh normal && $(T)/check.sh | tee /dev/stderr | python3 $(T)/ktap.py /dev/stdin

series: fetch
	@$(T)/series.sh

series-check: series
	@$(T)/series.sh --build-each

apply:
	@$(T)/apply.sh "$(KSRC)"

print-kdir:
	@. $(T)/common.sh && echo "$$BUILD/$(FLAVOUR)"

clean:
	@. $(T)/common.sh && rm -rf "$$BUILD" "$$KSRC" && echo "removed $$BUILD and $$KSRC"

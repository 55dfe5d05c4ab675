# Kaowu: make run | test | lint | bench | clean   (make venv is implied)
# Debian's own Python 3.11 where there is one: its interpreter (libpython linked in, built
# as Debian optimises it) ran the tests on ~25 % less CPU than pyenv's default build
# (libpython a shared library, no profile-guided optimisation). Else python3.11 on the PATH.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell [ -x /usr/bin/python3.11 ] && echo /usr/bin/python3.11 || echo python3.11)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHELL := /bin/bash
# Debian packages. Pinned only where Debian keeps the version: the CJK font for the PDFs
# (reportlab embeds TrueType outlines; WenQuanYi Zen Hei has them) has been 0.9.45-8 in
# bookworm since its release. Chromium, for the browser tests only, is not pinned: the
# security archive replaces its build every few weeks and drops the old one.
# chromium-driver depends on its own chromium version exactly, so the pair always match.
# `make check-pins` asks apt whether every pinned version can still be installed.
RUN_PACKAGES := fonts-wqy-zenhei=0.9.45-8 $(if $(filter /usr/bin/%,$(PYTHON)),python3.11-venv)
TEST_PACKAGES := chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# uv installs the pinned packages into .venv (from its cache a new .venv takes ~6 s where
# pip took ~17 s; the same versions: constraints.txt pins every one). uv itself is a program
# of its own, brought once per machine by pip into this user's cache (KAOWU_CACHE, as
# web/cached.sh), so a new checkout's .venv needs no pip of its own (making one, and
# compiling it with the rest, took ~5 s of a fresh clone's set-up).
UV_VERSION := 0.13.10
KAOWU_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kaowu
export KAOWU_CACHE
UV := $(KAOWU_CACHE)/uv-$(UV_VERSION)/uv
# from the cache alone where it holds every pinned package (its copy of the index goes stale
# after 10 minutes, and asking again took ~5 s); else from the index
UV_INSTALL := $(UV) pip install --python $(BIN)/python --system-certs --compile-bytecode \
  -c constraints.txt -e '.[cli,dev]'

.DEFAULT_GOAL := help
.PHONY: help venv run test lint bench faults clean check-pins site

help:
	@echo "make run    set up .venv, start every service (SQLite under var/, local RabbitMQ)"
	@echo "make site   build the web site (web/ -> services/gateway/static/site/; npm ci + vite)"
	@echo "make test   set up .venv, build the site, run the tests (Vitest, then pytest in parallel; not the slow ones)"
	@echo "make lint   ruff check"
	@echo "make bench  run the benchmarks"
	@echo "make faults inject faults under load; prove nothing is lost (restarts local RabbitMQ and PostgreSQL)"
	@echo "make check-pins  ask apt whether every pinned Debian package is still served"
	@echo "make clean  remove var/ and .venv"

venv: $(STAMP) $(VENV)/.system-run

# A stamp per package list: installed when a package is missing or a pinned one differs.
$(VENV)/.system-%: Makefile
	@pkgs="$(if $(filter run,$*),$(RUN_PACKAGES),$(TEST_PACKAGES))"; missing=""; \
	for p in $$pkgs; do name=$${p%%=*}; want=$${p#*=}; \
	  have=$$(dpkg-query -W -f='$${db:Status-Status} $${Version}' "$$name" 2>/dev/null); \
	  case "$$have" in "installed "*) [ "$$name" = "$$want" ] || [ "$${have#installed }" = "$$want" ] || missing="$$missing $$p";; \
	  *) missing="$$missing $$p";; esac; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; fi
	mkdir -p $(VENV) && touch $@
$(VENV)/.system-test: | $(VENV)/.system-run  # one apt-get at a time

# Fails, naming it, when a pinned Debian package's version is no longer served.
check-pins:
	$(SUDO) apt-get update -q >/dev/null
	@bad=""; for p in $(RUN_PACKAGES) $(TEST_PACKAGES); do case "$$p" in *=*) ;; *) continue;; esac; \
	  name=$${p%%=*}; want=$${p#*=}; \
	  if apt-cache madison "$$name" | awk -F'|' '{gsub(/ /,"",$$2); print $$2}' | grep -qxF "$$want"; \
	  then echo "ok: $$p"; else echo "NOT SERVED: $$p (served: $$(apt-cache madison "$$name" | awk -F'|' '{gsub(/ /,"",$$2); printf "%s ", $$2}'))"; bad=1; fi; done; \
	[ -z "$$bad" ]

# A .venv made by another Python than $(PYTHON) (an older checkout's) is made anew.
PY_ID := import sys; print(sys.base_prefix + " " + sys.version)
ifneq ($(wildcard $(BIN)/python),)
HAVE_PY := $(shell $(BIN)/python -c '$(PY_ID)' 2>&1)
WANT_PY := $(shell $(PYTHON) -c '$(PY_ID)' 2>&1)
ifneq "$(HAVE_PY)" "$(WANT_PY)"
OTHER_PYTHON := other-python
endif
endif
.PHONY: other-python
other-python: ;

# Re-install when the pinned dependencies change; a failed install leaves no stamp.
$(STAMP): pyproject.toml constraints.txt $(OTHER_PYTHON) | $(VENV)/.system-run $(UV)
	@if [ -n "$(OTHER_PYTHON)" ]; then echo "$(VENV) was made by another Python: made anew by $(PYTHON)"; \
	  rm -rf $(VENV) && mkdir -p $(VENV) && touch $(VENV)/.system-run; fi
	test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	$(UV_INSTALL) --offline -q 2>/dev/null || $(UV_INSTALL)
	touch $@

# uv's own binary, from PyPI's wheel (pinned), put in place whole or not at all
$(UV): | $(VENV)/.system-run
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  $(PYTHON) -m venv "$$tmp/venv" && \
	  "$$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) && \
	  mkdir -p $(@D) && install -m 755 "$$tmp/venv/bin/uv" $@.tmp.$$$$ && mv -f $@.tmp.$$$$ $@ && \
	  echo "uv $(UV_VERSION) in $@"

# The web site (web/, Vue 3 + Element Plus built by Vite) into services/gateway/static/site/.
# npm ci when the lockfile changes; the build when a source under web/ changes. Both are
# kept in this machine's cache by what they are made from (web/cached.sh), so a new clone
# of the same web/ copies them instead of making them again.
SITE_OUT := services/gateway/static/site
SITE_DEPS := web/node_modules/.installed
SITE_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/vite.config.js

$(SITE_DEPS): web/package.json web/package-lock.json web/cached.sh
	web/cached.sh packages
	touch $@

$(SITE_OUT)/.built: $(SITE_DEPS) $(SITE_SOURCES) web/cached.sh
	web/cached.sh site
	touch $@

site: $(SITE_OUT)/.built

# the Python packages and the site are set up side by side
SETUP := $(MAKE) --no-print-directory -j2 --output-sync=target

run:
	$(SETUP) venv site
	$(BIN)/python -m shared.runner

# the front end's unit tests (Vitest) first; then pytest in parallel shards (tests/run.py:
# TEST_SHARDS=n to change their number), the tests that restart the servers alone after
test:
	$(SETUP) venv $(VENV)/.system-test site
	cd web && npm test
	$(BIN)/python -m tests.run

lint: venv
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python -m bench

faults: venv
	$(BIN)/python -m faults

clean:
	rm -rf var $(VENV) $(SITE_OUT) web/node_modules

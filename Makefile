# Kaowu: make run | test | lint | bench | clean   (make venv is implied)
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHELL := /bin/bash
# Debian packages the project needs, pinned: a CJK font for the PDFs (reportlab embeds
# TrueType outlines; WenQuanYi Zen Hei has them), Chromium for the dashboard test.
SYSTEM_PACKAGES := fonts-wqy-zenhei=0.9.45-8 chromium=156.0.8078.108-1~deb12u1 chromium-driver=156.0.8078.108-1~deb12u1
SYSTEM_STAMP := $(VENV)/.system
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PIP_VERSION := 25.3

.DEFAULT_GOAL := help
.PHONY: help venv run test lint bench faults clean

help:
	@echo "make run    set up .venv, start every service (SQLite under var/, local RabbitMQ)"
	@echo "make test   set up .venv, run the tests (not the slow ones)"
	@echo "make lint   ruff check"
	@echo "make bench  run the benchmarks"
	@echo "make faults inject faults under load; prove nothing is lost (restarts local RabbitMQ and PostgreSQL)"
	@echo "make clean  remove var/ and .venv"

venv: $(STAMP) $(SYSTEM_STAMP)

$(SYSTEM_STAMP): Makefile
	@if dpkg-query -W -f='$${Package}=$${Version}\n' $(foreach p,$(SYSTEM_PACKAGES),$(firstword $(subst =, ,$(p)))) 2>/dev/null | sort | diff -q - <(printf '%s\n' $(SYSTEM_PACKAGES) | sort) >/dev/null; then :; \
	else $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES); fi
	mkdir -p $(VENV) && touch $@

# Re-install when the pinned dependencies change; a failed install leaves no stamp.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

run: venv
	$(BIN)/python -m shared.runner

test: venv
	$(BIN)/python -m pytest -m "not slow" -q

lint: venv
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python -m bench

faults: venv
	$(BIN)/python -m faults

clean:
	rm -rf var $(VENV)

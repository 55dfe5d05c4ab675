# syntax=docker/dockerfile:1
# One image for every Kaowu service (the last stage, `runtime`: the default target); the
# service is the argument:
#   docker build -t IMAGE . && docker run IMAGE services.account.service:AccountService
# (deploy/k8s sets it per Deployment). Migrations and rebuilds run the same image:
#   docker run --entrypoint python IMAGE -m shared.migrate account
# It holds what the services need only (pyproject's dependencies). The operator command
# line is an image of its own, the same plus the `cli` extra and cli/:
#   docker build --target cli -t IMAGE-cli . && docker run IMAGE-cli status
# (in the cluster: deploy/k8s/kaowu-cli runs it as a one-off pod).
# Debian bookworm, as the Makefile's pinned system packages (the CJK font).
#
# Base images are pinned by digest (the tag says what it is, the digest what is pulled;
# tests/unit/test_k8s_manifests.py fails on a FROM without one). To move to a newer build
# of the same tag, ask the registry for the tag's current digest and put it on every FROM
# of that image, then build and run the tests:
#   docker buildx imagetools inspect python:3.11-slim-bookworm --format '{{json .Manifest.Digest}}'
#   (or: crane digest python:3.11-slim-bookworm; skopeo inspect --format '{{.Digest}}'
#    docker://docker.io/library/python:3.11-slim-bookworm)
# The digests below (python:3.11-slim-bookworm, node:20-bookworm-slim) are the
# multi-platform indexes as public references recorded them; they were not pulled from this
# repository's machines (no registry access): the first build confirms them, or refresh
# them as above.

# ---- builder: the pinned dependencies, in a virtualenv --------------------------------
FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91 AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /build
COPY pyproject.toml constraints.txt ./
# the project's runtime dependencies (pyproject's pins), every transitive one pinned by
# constraints.txt; the project itself is copied as source below, not installed
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip install pip==25.3 \
 && pip install -c constraints.txt -r requirements.txt

# ---- cli-builder: the same virtualenv plus the command line's extra ---------------------
FROM builder AS cli-builder
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['cli']))" > cli-requirements.txt \
 && pip install -c constraints.txt -r cli-requirements.txt

# ---- site: the web site (web/) built by Vite, from the committed lockfile --------------
FROM node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0 AS site
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
# vite.config.js writes to ../services/gateway/static/site
RUN mkdir -p /src/services/gateway/static && npm run build

# ---- base: what every Kaowu image holds: the font, the user, the services' source -----
FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91 AS base

# the admission tickets' and certificates' PDFs embed a CJK TrueType font (shared/pdf.py):
# the same pinned package as the Makefile's
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-wqy-zenhei=0.9.45-8 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 kaowu \
 && useradd --system --uid 10001 --gid kaowu --home-dir /app --no-create-home --shell /usr/sbin/nologin kaowu

WORKDIR /app
COPY config.yml ./
COPY shared ./shared
COPY services ./services
COPY deploy/sessions ./deploy/sessions
COPY deploy/reference ./deploy/reference

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_ARENA_MAX=2

# ---- cli: the operator command line (`kaowu`), talking to the services with AMQP_URI -----
FROM base AS cli
COPY --from=cli-builder /opt/venv /opt/venv
COPY cli ./cli
RUN printf '#!/bin/sh\nexec python -m cli "$@"\n' > /usr/local/bin/kaowu \
 && chmod 0755 /usr/local/bin/kaowu
USER 10001:10001
ENTRYPOINT ["kaowu"]
CMD ["--help"]

# ---- runtime: the service image (the default target): slim, non-root, the services only --
FROM base AS runtime

COPY --from=builder /opt/venv /opt/venv
COPY --from=site /src/services/gateway/static/site ./services/gateway/static/site

ENV WEB_SERVER_ADDRESS=0.0.0.0:8000

USER 10001:10001

# WEB_SERVER_ADDRESS: /health/live, /health/ready, /metrics (and the gateway's API)
EXPOSE 8000

# nameko stops taking work on SIGTERM and lets the workers in flight finish
STOPSIGNAL SIGTERM
ENTRYPOINT ["nameko", "run", "--config", "/app/config.yml"]
CMD ["services.account.service:AccountService"]

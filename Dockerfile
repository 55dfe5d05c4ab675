# syntax=docker/dockerfile:1
# One image for every Kaowu service; the service is the argument:
#   docker run IMAGE services.account.service:AccountService
# (deploy/k8s sets it per Deployment). Migrations and rebuilds run the same image:
#   docker run --entrypoint python IMAGE -m shared.migrate account
# and so does the operator command line, inside a running pod:
#   kubectl -n kaowu exec deploy/kaowu-gateway -- kaowu dlq list
# Debian bookworm, as the Makefile's pinned system packages (the CJK font).
#
# Base images are pinned by digest (the tag says what it is, the digest what is pulled;
# tests/unit/test_k8s_manifests.py fails on a FROM without one). To move to a newer build
# of the same tag, ask the registry for the tag's current digest and put it on every FROM
# of that image, then build and run the tests:
#   docker buildx imagetools inspect python:3.11-slim-bookworm --format '{{json .Manifest.Digest}}'
#   (or: crane digest python:3.11-slim-bookworm; skopeo inspect --format '{{.Digest}}'
#    docker://docker.io/library/python:3.11-slim-bookworm)
# The digest below is the multi-platform index of python:3.11-slim-bookworm as a public
# reference recorded it; it was not pulled from this repository's machine (no registry
# access): the first build confirms it, or refresh it as above.

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

# ---- runtime: slim, non-root, the venv and the source ---------------------------------
FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91 AS runtime

# the admission tickets' and certificates' PDFs embed a CJK TrueType font (shared/pdf.py):
# the same pinned package as the Makefile's. `kaowu`: the operator command line (cli/),
# talking to the services with the pod's AMQP_URI.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-wqy-zenhei=0.9.45-8 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 kaowu \
 && useradd --system --uid 10001 --gid kaowu --home-dir /app --no-create-home --shell /usr/sbin/nologin kaowu \
 && printf '#!/bin/sh\nexec python -m cli "$@"\n' > /usr/local/bin/kaowu \
 && chmod 0755 /usr/local/bin/kaowu

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY config.yml ./
COPY shared ./shared
COPY services ./services
COPY cli ./cli
COPY deploy/sessions ./deploy/sessions
COPY deploy/reference ./deploy/reference

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_ARENA_MAX=2 \
    WEB_SERVER_ADDRESS=0.0.0.0:8000

USER 10001:10001

# WEB_SERVER_ADDRESS: /health/live, /health/ready, /metrics (and the gateway's API)
EXPOSE 8000

# nameko stops taking work on SIGTERM and lets the workers in flight finish
STOPSIGNAL SIGTERM
ENTRYPOINT ["nameko", "run", "--config", "/app/config.yml"]
CMD ["services.account.service:AccountService"]

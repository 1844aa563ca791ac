# syntax=docker/dockerfile:1
# legtriage — FHIR R4 triage service for leg numbness, served by gunicorn.
#
#   docker build -t legtriage .
#   podman build --format docker --build-arg BASE_IMAGE=localhost/legtriage-base:bookworm-py3.11 -t legtriage .
#
# BASE_IMAGE must be a Debian-based image with Python 3.11 where `python3 -m venv`
# works (the official python:3.11-slim images, or the local image that
# scripts/make-base-image builds with debootstrap). Use --format docker with
# podman/buildah so the HEALTHCHECK is kept (the OCI image format has none).
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

# ---------------------------------------------------------------------------
# builder: install the locked dependencies into a virtual environment that the
# runtime stage copies.
FROM ${BASE_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# Only the locks: the dependency layers stay cached while the code changes.
COPY requirements-pip.lock requirements.lock ./
# An optional build secret "ca-bundle" (a PEM file) lets pip trust a
# TLS-intercepting proxy: --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt
# It is mounted for this step only and never stored in an image layer.
# --require-hashes: exactly the pinned files of requirements.lock (scripts/lock writes it from
# pyproject.toml), nothing resolved at build time. The application is copied, not installed.
# The installer first, from its own lock: the base image's pip may be too old to install the lock
# in hash mode once upstream has released newer versions of its packages (scripts/lib/venv.sh).
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes -r requirements-pip.lock \
 && /opt/venv/bin/pip install --require-hashes -r requirements.lock \
 && /opt/venv/bin/pip uninstall --yes setuptools pip \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# ---------------------------------------------------------------------------
# runtime: the base image, the virtual environment, the application files and
# an unprivileged user. Nothing is written outside /tmp and the records volume
# (/var/lib/legtriage: the embedded SQLite store) at run time, so the container
# runs with a read-only root filesystem and a tmpfs on /tmp.
FROM ${BASE_IMAGE} AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="legtriage" \
      org.opencontainers.image.description="FHIR R4 triage microservice for leg numbness: QuestionnaireResponse in, RiskAssessment and ServiceRequest proposals out" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="legtriage" \
      org.opencontainers.image.documentation="docs/deployment.md"

RUN useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin legtriage \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/legtriage

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY gunicorn.conf.py openapi.yaml ./
COPY mappings/ ./mappings/
COPY service/ ./service/
COPY docker/healthcheck ./docker/healthcheck
# The command line (`legtriage migrate`, `legtriage purge`, …): the application is copied, not
# pip-installed, so its console script is this launcher of service/cli.py.
COPY docker/legtriage /opt/venv/bin/legtriage
RUN /opt/venv/bin/python -m compileall -q /app/service /app/gunicorn.conf.py \
 && chmod -R a+rX,go-w /app \
 && chmod 0755 /app/docker/healthcheck /opt/venv/bin/legtriage
# The web app's browser files (LHC-Forms, fhirclient.js) from the pinned npm packages of web/:
# scripts/lib/web-assets.sh puts them in web/dist/ before the build (scripts/serve, scripts/test and
# scripts/container-test run it), so the image needs no Node.js and no network for them. Copied
# after the chmod above (the script makes them world-readable), so they are stored once, not twice.
COPY web/dist/ ./web/dist/

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    HOME=/tmp \
    LEGTRIAGE_HOST=0.0.0.0 \
    LEGTRIAGE_PORT=8080 \
    LEGTRIAGE_DATA_DIR=/var/lib/legtriage

# The embedded records store (SQLite) lives here: a volume, so records outlive the container and
# the root filesystem stays read-only. With LEGTRIAGE_DATABASE_URL (PostgreSQL) it stays empty.
VOLUME ["/var/lib/legtriage"]

USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/app/docker/healthcheck"]

# gunicorn is PID 1: SIGTERM makes it stop accepting, finish in-flight requests
# (graceful_timeout) and exit.
CMD ["/opt/venv/bin/gunicorn", "--config", "/app/gunicorn.conf.py", "service:create_app()"]

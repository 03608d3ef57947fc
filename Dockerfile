# syntax=docker/dockerfile:1
#
# Asbru: one image, two roles.
#   docker run IMAGE                -> asbru serve     (the gateway, port 8080)
#   docker run IMAGE operator ...   -> asbru operator  (the kopf operator)
#
# Dependencies come from the same pinned constraints.txt the test suite runs against.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: build the asbru wheel and install it, with its pinned dependencies, into a venv ----
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONUNBUFFERED=1

RUN python -m venv /opt/asbru
ENV PATH=/opt/asbru/bin:$PATH

WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
COPY gateway/ gateway/
COPY operator/ operator/

# A regular (non-editable) install: pip builds the asbru wheel from the source tree and installs
# it with every dependency pinned by constraints.txt. pip also byte-compiles what it installs, so
# the read-only runtime image never needs to write a .pyc.
RUN pip install --no-cache-dir -c constraints.txt . \
 && pip check \
 && asbru --help >/dev/null

# --- runtime: the venv only, no build tools, no sources, non-root ----------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="asbru" \
      org.opencontainers.image.description="Kubernetes-native, OpenAI-compatible LLM gateway and its operator" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/asbru/bin:$PATH \
    ASBRU_HOST=0.0.0.0 \
    ASBRU_PORT=8080

RUN groupadd --system --gid 10001 asbru \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin asbru

COPY --from=builder /opt/asbru /opt/asbru

# Numeric, so Kubernetes can verify runAsNonRoot without resolving names.
USER 10001:10001
WORKDIR /opt/asbru

# `asbru serve` binds 127.0.0.1 unless told otherwise: in a container it must listen on all
# interfaces (ASBRU_HOST above) for the Service, the probes and `docker run -p` to reach it.
EXPOSE 8080

# No HEALTHCHECK: the same image also runs the operator, which does not serve /healthz, and
# Kubernetes ignores HEALTHCHECK anyway (the operator sets liveness/readiness probes on /healthz
# and /readyz of the gateway pods).
ENTRYPOINT ["asbru"]
CMD ["serve"]

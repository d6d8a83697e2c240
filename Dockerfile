# syntax=docker/dockerfile:1
# tls-exporter image: multi-stage, non-root, no configuration baked in.
#
# Pin the base image by digest for reproducible builds (see the README, "Running it: container"):
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest> -t tls-exporter .
ARG PYTHON_IMAGE=python:3.11-slim

# Build stage: a wheel of tls-exporter and its dependencies.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /wheels \
 && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/*.whl

# Runtime stage: no compilers, no build tools, a non-root user.
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tls-exporter" \
      org.opencontainers.image.description="Prometheus exporter for TLS certificates on endpoints of every common protocol and in files" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 65532 --home-dir /nonexistent --shell /usr/sbin/nologin exporter
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels tls-exporter && rm -rf /wheels
# The example is documentation only: a bare `docker run` must not probe its example.com names.
COPY config.example.yml /usr/share/doc/tls-exporter/config.example.yml
# Without --config.file the exporter reads ./config.yml if present: mount yours at
# /etc/tls-exporter/config.yml. With none it starts with no targets, says so, and serves /probe.
WORKDIR /etc/tls-exporter
USER 65532:65532
EXPOSE 9632
# Follows the running exporter's --web.listen-address and --web.config.file (read from PID 1).
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s CMD ["python", "-m", "exporter.healthcheck"]
ENTRYPOINT ["tls-exporter"]
CMD ["--web.listen-address=:9632"]

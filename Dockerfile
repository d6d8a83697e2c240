# syntax=docker/dockerfile:1
# Build stage: a wheel of tls-exporter and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /wheels \
 && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/*.whl

# Runtime stage: no compilers, no build tools, a non-root user.
FROM python:3.11-slim
RUN useradd --system --uid 65532 --home-dir /nonexistent --shell /usr/sbin/nologin exporter
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels tls-exporter && rm -rf /wheels
COPY config.example.yml /etc/tls-exporter/config.yml
USER 65532:65532
EXPOSE 9632
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:9632/-/healthy', timeout=2).status != 200)"
ENTRYPOINT ["tls-exporter"]
CMD ["--config.file=/etc/tls-exporter/config.yml", "--web.listen-address=:9632"]

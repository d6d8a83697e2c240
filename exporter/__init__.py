"""tls-exporter: a Prometheus exporter that watches TLS certificates."""

__version__ = "0.1.0"

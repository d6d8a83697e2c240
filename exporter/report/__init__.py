"""Reports a PKI owner files: daily status, weekly trend, monthly compliance, from Prometheus."""

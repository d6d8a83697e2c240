"""Outputs that are neither the metrics nor the web layer: ``check``'s verdict and rendering, the
event log and the container health check. They read results and jobs' descriptions; none probes."""

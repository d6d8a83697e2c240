"""What every stage leans on and that leans on no stage: errors and outcomes, the probe deadline,
limits, memory, the file I/O pool, caches, text safety, logging, the event loop choice and the
network policies."""

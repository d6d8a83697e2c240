"""When jobs run and what is kept of them: the scheduler, its due queue, the shard that splits jobs
between instances, the store of latest results (with the outputs subscribed to its events) and
the change tracker that turns passes into typed events."""

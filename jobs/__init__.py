"""RQ task shells: job ids, retry policy, cron and the worker. Enqueueing itself is ops.queue."""

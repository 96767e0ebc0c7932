"""Fan-out: the per-process hub (channel -> local subscriptions) and the brokers that carry
messages between processes (in-process, Redis, Sentinel, Cluster)."""

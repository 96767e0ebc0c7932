"""What the benchmark runs: the servers, the scenarios and their sizes (full and QUICK)."""

SERVERS = {
    "ours": "ours: Django views on the gevent websocket worker",
    "bare": "bare gevent-websocket, one Redis PubSub greenlet per process",
    "channels-core": "Channels + daphne + channels_redis (RedisChannelLayer)",
    "channels-pubsub": "Channels + daphne + channels_redis (PubSub layer)",
}
CHANNELS = ("channels-core", "channels-pubsub")

ROOM = "bench"  # every fan-out scenario uses one chat room: /chat/bench/
ABUSE_ROOM = "abuse"  # ... but for the abuse scenario's abuser (bench/abuse.py)
# ... but the sharding scenario (bench/sharding.py), which spreads its traffic over many rooms.
SHARDING_ROOMS = [f"shard-{i}" for i in range(48)]

FULL = {
    "servers": ["ours", "bare", "channels-core", "channels-pubsub"],
    "echo": {"connections": 100, "size": 64, "warmup": 2, "seconds": 10},
    "echo-large": {"connections": 10, "size": 256 * 1024, "warmup": 2, "seconds": 10},
    "fanout-1": {"subscribers": 1000, "rate": 50, "seconds": 15},
    "fanout-2": {"subscribers": 3000, "rate": 20, "seconds": 15},
    "idle": {"connections": 5000},
    "slow-consumer": {"subscribers": 1000, "rate": 50, "seconds": 10},
    "scaling": {"subscribers": 1000, "in_flight": 50, "warmup": 2, "seconds": 10},
    "flood": {"seconds": 5},
    # n members join one room as fast as the load generator connects (`concurrency` handshakes at once).
    "crowd-1": {"subscribers": 1000, "concurrency": 200, "rate": 20, "seconds": 15},
    "crowd-2": {"subscribers": 3000, "concurrency": 200, "rate": 20, "seconds": 15},
    "crowd-3": {"subscribers": 10000, "concurrency": 200, "rate": 20, "seconds": 15},
    # `rooms` rooms of `subscribers` members each over two workers, `rate` messages/s in all spread
    # over the rooms: through one Redis, then through a Redis Cluster of 3 shards.
    "sharding": {"rooms": 48, "subscribers": 20, "rate": 100, "seconds": 10},
    # `pages` pages, each with a chat room, its user's notifications and its user's jobs: as one
    # socket with three topics, then as three sockets (bench/page.py).
    "page": {"pages": 2000},
    # `subscribers` in one room get `rate` probes/s, without and then with `abusers` sockets of one
    # address posting `abuser_rate` messages/s each into another room (bench/abuse.py).
    "abuse": {"subscribers": 1000, "rate": 20, "seconds": 10, "abusers": 100, "abuser_rate": 50},
    # `rate` publishes/s to a room of `subscribers` through the server API, then from Django code (bench/api.py).
    "api": {"subscribers": 1000, "rate": 50, "seconds": 15},
    # A delivery later than this after its publish counts as lost (and ends the drain).
    "late_after": 30.0,
    # The whole run stops starting new scenarios after this many seconds.
    "budget": 40 * 60,
}

# `make bench QUICK=1`: the same scenarios, smaller and shorter, under 12 minutes in all.
QUICK = {
    "servers": ["ours", "bare", "channels-core"],
    "echo": {"connections": 100, "size": 64, "warmup": 0.5, "seconds": 2},
    "echo-large": {"connections": 10, "size": 256 * 1024, "warmup": 0.5, "seconds": 2},
    "fanout-1": {"subscribers": 300, "rate": 50, "seconds": 3},
    "fanout-2": {"subscribers": 600, "rate": 20, "seconds": 3},
    "idle": {"connections": 1000},
    "slow-consumer": {"subscribers": 300, "rate": 50, "seconds": 3},
    "scaling": {"subscribers": 300, "in_flight": 50, "warmup": 0.5, "seconds": 3},
    "flood": {"seconds": 2},
    "crowd-1": {"subscribers": 300, "concurrency": 200, "rate": 20, "seconds": 3},
    "crowd-2": {"subscribers": 1000, "concurrency": 200, "rate": 20, "seconds": 3},
    "crowd-3": {"subscribers": 1000, "concurrency": 200, "rate": 20, "seconds": 3},
    "sharding": {"rooms": 24, "subscribers": 10, "rate": 60, "seconds": 3},
    "page": {"pages": 300},
    "abuse": {"subscribers": 300, "rate": 20, "seconds": 3, "abusers": 100, "abuser_rate": 50},
    "api": {"subscribers": 300, "rate": 50, "seconds": 3},
    "late_after": 5.0,
    "budget": 12 * 60,
}

# Which servers each scenario runs against (the targets need no more).
SCENARIO_SERVERS = {
    "echo": "all",
    "echo-large": "all",
    "fanout-1": "all",
    "fanout-2": "all",
    "idle": "all",
    "slow-consumer": ["ours"],
    "scaling": ["ours"],
    "flood": ["ours", "bare", "channels-core"],
    "crowd-1": "all",
    "crowd-2": "all",
    "crowd-3": ["ours", "bare"],
    "sharding": ["ours"],
    "page": ["ours"],
    "abuse": ["ours"],
    "api": ["ours"],
}

# The load generator is "saturated" above this share of its core: its numbers are flagged.
LOADGEN_SATURATED = 0.90

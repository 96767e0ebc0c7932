"""Budgets that belong to a client, not to one socket: shared by all its sockets on every worker.

A socket's own rate limit (WEBSOCKET_RATE_LIMIT) does not stop a client that opens many sockets, nor
one whose sockets land on several workers. An application names the client (its account, or its
address: realtime/addresses.py) and what it spends (a post, its bytes), and asks:

    wait = spend("chat-post", "addr:203.0.113.9", Rate(per_second=1, burst=10), cost=1)
    if wait:  # nothing was spent; `wait` s from now `cost` units will be there
        ...

The arithmetic is GCRA (as in redis-cell or brandur's throttled): one number per client and budget,
the moment its budget is whole again. Spending moves it `cost / per_second` s later; a spend that
would put it more than `burst / per_second` s past now is refused, and the refusal says exactly
when it would fit. Nothing refills in the background, nothing is scanned, and no window edge lets
twice the rate through. With Redis (a broker with a `client`) that number lives in one key, spent
by one small script (budgets.lua) in ONE round trip, on Redis's clock, and expires once the budget
is whole. Without Redis (the in-process broker serves one worker process), or while Redis is
unreachable, the same arithmetic runs on a dict in this process: one worker's share of the truth.
"""

import logging
import math
import random
import time
from pathlib import Path
from typing import NamedTuple

import gevent

from .addresses import client_network
from .fanout.brokers import get_broker
from .fanout.brokers.base import UNREACHABLE

log = logging.getLogger("realtime.budgets")

SPEND = (Path(__file__).with_name("budgets.lua")).read_bytes()
# A socket refused for its client's budget reads nothing more for up to this long (hold_off)...
HOLD_OFF_MAX = 1.0
# ... and then up to this many seconds longer, at random: a client's refused sockets were all told
# the same moment, and woken together they would be refused together, in one burst of work that
# every other socket of the worker waits behind (bench/FINDINGS.md, the abuse scenario).
HOLD_OFF_SPREAD = 0.5


class Rate(NamedTuple):
    per_second: float  # units that come back each second; 0 or less: no limit
    burst: float  # units that may be spent at once (and the most a budget holds)


def budget_holder(user, request):
    """Whose budgets a socket spends: its account's when logged in ("user:<pk>"), else its address's
    ("addr:<address, or an IPv6 /64>": everyone behind a NAT shares it)."""
    if user.is_authenticated:
        return f"user:{user.pk}"
    return f"addr:{client_network(request)}"


def spend(budget, who, rate, cost=1):
    """Spend `cost` units of `who`'s `budget` (names chosen by the application). 0.0 when spent;
    otherwise nothing is spent, and the result is how many seconds until `cost` units are there.
    A cost above the burst costs the burst (it would never fit)."""
    if rate.per_second <= 0:
        return 0.0
    return _store().spend(f"{budget}:{who}", rate, min(cost, rate.burst))


def retry_after(wait):
    """`wait` (what `spend` answered) as a client is told it: rounded up to the hundredth, so that
    a retry after it is never early."""
    return math.ceil(wait * 100) / 100


def hold_off(wait):
    """Call in a socket's view after refusing its client for the budget: the socket reads nothing
    for `wait` s (at most HOLD_OFF_MAX, so that its pings are still answered in time), then, at
    random, up to HOLD_OFF_SPREAD s longer. What it sends meanwhile waits in the network's
    buffers instead of costing this worker a refusal each: a client posting flat out on a hundred
    sockets would otherwise keep the worker busy refusing, and every other socket waiting for its
    turn. The spread wakes those hundred sockets one at a time, not all at the moment they were
    told (only one of them can have the unit that comes back then)."""
    gevent.sleep(min(wait, HOLD_OFF_MAX) + HOLD_OFF_SPREAD * random.random())


class Moments:
    """key -> a moment on the clock. Keys whose moment passed are forgotten, a sweep each time
    SWEEP_ABOVE more are remembered (amortized: no scan per spend, memory bounded by the clients
    of the last moments)."""

    SWEEP_ABOVE = 10_000

    def __init__(self):
        self.at = {}
        self.kept = 0  # keys left by the last sweep

    def get(self, key, default):
        return self.at.get(key, default)

    def set(self, key, moment, now):
        self.at[key] = moment
        if len(self.at) > self.kept + self.SWEEP_ABOVE:
            self.at = {k: t for k, t in self.at.items() if t > now}
            self.kept = len(self.at)


class InProcessBudgets:
    """The budgets of this process alone, on its monotonic clock."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.whole_at = Moments()  # key -> the clock's time at which its budget is whole again

    def spend(self, key, rate, cost):
        now = self.clock()
        interval = 1.0 / rate.per_second
        whole_at = max(self.whole_at.get(key, now), now) + interval * cost
        wait = whole_at - now - interval * rate.burst
        if wait > 0:
            return wait
        self.whole_at.set(key, whole_at, now)
        return 0.0


class RedisBudgets:
    """The budgets of every process, in Redis: a key per client and budget, named like every key of
    the broker (REALTIME_KEY_PREFIX; with Cluster, the key is its own hash tag).

    A refusal also says when the client's next unit comes back, and nothing can bring it sooner
    (other workers only spend): until then this process refuses that client without asking Redis,
    so a client posting flat out costs a round trip per refusal period, not one per message.
    """

    def __init__(self, client, names, clock=time.monotonic):
        self.names, self.clock = names, clock
        self.script = client.register_script(SPEND)
        self.empty_until = Moments()  # key -> when its next unit comes back, as last refused
        self.fallback = InProcessBudgets(clock)
        self.unreachable = False  # logged once per outage

    def spend(self, key, rate, cost):
        now, interval = self.clock(), 1.0 / rate.per_second
        empty_until = self.empty_until.get(key, now)
        if empty_until > now:
            return empty_until - now + interval * (cost - 1)
        try:
            wait = self.script(keys=[self.names.key("budget", key)], args=[1000 * interval, rate.burst, cost]) / 1000
        except UNREACHABLE as error:
            if not self.unreachable:
                log.warning("budgets: Redis is unreachable (%s); this process counts alone until it is back", error)
                self.unreachable = True
            return self.fallback.spend(key, rate, cost)
        self.unreachable = False
        if wait:
            self.empty_until.set(key, now + wait - interval * (cost - 1), now)
        return wait


_current = (None, None)  # (the broker, its budgets): new ones when the broker is replaced


def _store():
    global _current
    broker = get_broker()
    if _current[0] is not broker:
        store = RedisBudgets(broker.client, broker.names) if broker.client is not None else InProcessBudgets()
        _current = (broker, store)
    return _current[1]

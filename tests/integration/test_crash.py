"""Crash test: kill -9 sluiced at random moments under idempotent acks=all
load on partitions of both shards, many times over, and after every restart
read the partitions back whole: every acknowledged record must be there
exactly once, at its acknowledged offset, in acknowledged order, with
offsets contiguous.

The moments are random but reproducible: each kill comes uniform(0.05,
1.5) s after the load (re)started, and the restart after a pause that is
0 half the time and uniform(0, 0.3) s otherwise (long enough for the
clients to see the broker gone and queue retries). The seed is printed;
SLUICE_CRASH_SEED=N replays a run, SLUICE_CRASH_CYCLES=N runs N kills
(default 8). Segments are small (SEGMENT_BYTES), so that kills also land on
segment rolls and the producer snapshots written there. While a restart's
check reads the log, the producers retry what they hold but take no new
records, so a check costs what the log holds and a long run grows
linearly: 60 cycles took 3.5 minutes on the non-ASan build.
"""

import os
import random

import pytest

import kafka_raw as kr
from conftest import unique
from helpers import Producers, check_log, produce_through_kills, read_log

CYCLES = int(os.environ.get("SLUICE_CRASH_CYCLES") or 8)
SEED = int(os.environ.get("SLUICE_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
PARTS = 6  # consecutive partitions sit on consecutive shards: 3 on each of 2
PRODUCERS = 2
# Records/s per producer: enough for several produce requests in flight on
# every partition at any moment, few enough that reading every partition
# back after each of many restarts stays quick.
RATE = 3000
SEGMENT_BYTES = 256 * 1024
KILL_DELAY_S = (0.05, 1.5)
PAUSE_MAX_S = 0.3


@pytest.mark.timeout_s(90 + 15 * CYCLES + CYCLES * CYCLES // 20)
def test_kill9_at_random_moments(make_broker, tmp_path):
    print("SLUICE_CRASH_SEED=%d SLUICE_CRASH_CYCLES=%d" % (SEED, CYCLES))
    rng = random.Random(SEED)
    b = make_broker("--shards", "2")
    t = unique("crash")
    with kr.Conn.to(b.bootstrap) as c:
        err, _ = c.create_topic(t, PARTS, configs={"segment.bytes": str(SEGMENT_BYTES)})
        assert err == 0
    parts = range(PARTS)
    seen = []

    def after_restart(rnd):
        b.check_log()
        # Acknowledgements first: each of these is durable, so it must be in
        # what is read next, although the producers go on meanwhile.
        acks = prod.acks()
        n = check_log(read_log(b.bootstrap, t, parts), acks, PARTS)
        seen.append((sum(len(a.ok) for a in acks), n))

    with Producers(b.bootstrap, t, PARTS, tmp_path, n=PRODUCERS, rate=RATE) as prod:
        rounds = produce_through_kills(
            b, prod, CYCLES, delay_s=lambda rnd: rng.uniform(*KILL_DELAY_S),
            pause_s=lambda rnd: rng.choice([0.0, rng.uniform(0.0, PAUSE_MAX_S)]),
            after_restart=after_restart)
        acks = prod.finish()
    total = check_log(read_log(b.bootstrap, t, parts), acks, PARTS, exact=True)
    print("seed %d: %d kills; (acks at kill, acks once resumed): %s" % (SEED, CYCLES, rounds))
    print("checked after each restart (acknowledged, records in the log): %s" % seen)
    print("%d records acknowledged, all in the log exactly once" % total)
    # Each kill came under load, and the records grew from round to round.
    assert all(a > 0 for a, _ in rounds) and total > rounds[-1][0]
    # The recovered log also survives a clean restart unchanged.
    b.restart()
    assert check_log(read_log(b.bootstrap, t, parts), acks, PARTS, exact=True) == total

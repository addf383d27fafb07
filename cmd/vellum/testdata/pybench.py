#!/usr/bin/env python3
"""Measure vellum_audit.AuditCollector against a running vellum serve
(run by BenchmarkPythonCollector; PYTHONPATH=examples/python).

  pybench.py URL TOKEN POLICY SESSIONS CONCURRENCY

Replays examples/python/session.jsonl SESSIONS times (each under its own
session id), CONCURRENCY streams at once, through one collector, and
prints one JSON line: events, seconds (stream start to everything
acknowledged), and the per-event added latency (p50, p99, in µs: from the
inner stream yielding an event to the wrapper yielding it), next to the
same figures for the bare stream measured in the same run.
"""

import asyncio
import json
import os
import sys
import time

from replay import load_session
from vellum_audit import AuditCollector

HERE = os.environ.get("PYTHONPATH", ".").split(os.pathsep)[0]


async def stream(steps, stamps):
    for s in steps:
        stamps.append(time.perf_counter_ns())
        yield s


async def one(steps, lat, wrap=None):
    stamps = []
    it = stream(steps, stamps)
    if wrap is not None:
        it = wrap(it)
    i = 0
    async for _ in it:
        lat.append(time.perf_counter_ns() - stamps[i])
        i += 1


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] / 1000


async def main(url, token, policy, sessions, conc):
    ctx, steps = load_session(os.path.join(HERE, "session.jsonl"))
    base = []
    for _ in range(sessions):
        await one(steps, base)
    a = AuditCollector(url, token, policy=policy, max_pending=100_000, durable_timeout=30)
    lat = []
    sem = asyncio.Semaphore(conc)
    t0 = time.perf_counter()

    async def run(i):
        async with sem:
            await one(steps, lat, lambda it: a.wrap(it, session_id="bench-%s-%d-%d" % (policy, os.getpid(), i),
                                                   agent=ctx["agent"], model=ctx["model"]))

    await asyncio.gather(*(run(i) for i in range(sessions)))
    ok = await a.flush(120)
    secs = time.perf_counter() - t0
    st = a.status()
    await a.aclose()
    print(json.dumps({"policy": policy, "events": len(lat), "seconds": secs, "ok": ok and st["sent"] == len(lat),
                      "records": st["records"], "posts": st["posts"],
                      "p50_us": pct(lat, 0.5), "p99_us": pct(lat, 0.99),
                      "bare_p50_us": pct(base, 0.5), "bare_p99_us": pct(base, 0.99)}))


if __name__ == "__main__":
    u, t, p, n, c = sys.argv[1:6]
    asyncio.run(main(u, t, p, int(n), int(c)))

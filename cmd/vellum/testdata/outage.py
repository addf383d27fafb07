#!/usr/bin/env python3
"""Drive vellum_audit.AuditCollector through a Vellum outage (run by
TestPythonCollectorOutage, which stops and restarts a real `vellum serve`).

  outage.py fail_open   URL TOKEN SESSION SPILL
      Vellum is down: replays SESSION (the agent must not stop), prints
      "streamed <status json>", waits for a line on stdin (Vellum is back),
      flushes, prints "flushed <status json>"; exit 0 if every step was
      delivered.
  outage.py fail_closed URL TOKEN SESSION
      Vellum is down: replays SESSION with durable_timeout 1 s; prints
      "released N" and "raised <error>"; waits for a line on stdin (Vellum
      is back); replays it again under another session id and prints
      "released N" and "ok"; exit 0.

Run with PYTHONPATH=examples/python.
"""

import asyncio
import json
import sys

from replay import load_session  # noqa: E402
from vellum_audit import AuditCollector, AuditUnavailable  # noqa: E402


async def stream(steps):
    for s in steps:
        yield s
        await asyncio.sleep(0.001)


async def readline():
    return await asyncio.to_thread(sys.stdin.readline)


def say(*a):
    print(*a, flush=True)


async def fail_open(url, token, session, spill):
    ctx, steps = load_session(session)
    a = AuditCollector(url, token, policy="fail_open", spill_path=spill, max_pending=4,
                       retry_initial=0.05, retry_max=0.2)
    n = 0
    async for _ in a.wrap(stream(steps), session_id=ctx["session_id"], trace_id=ctx["trace_id"],
                          agent=ctx["agent"], model=ctx["model"]):
        n += 1
    # The sender's first attempt may come after the stream is done on a
    # busy machine: wait (bounded) until the outage is seen and spilled.
    for _ in range(3000):
        st = a.status()
        if not st["healthy"] and st["spill_pending"] and not st["queued"]:
            break
        await asyncio.sleep(0.01)
    say("streamed", json.dumps(dict(a.status(), released=n)))
    await readline()
    ok = await a.flush(60)
    st = a.status()
    await a.aclose()
    say("flushed", json.dumps(st))
    return 0 if ok and st["sent"] == len(steps) and not st["dropped"] else 1


async def fail_closed(url, token, session):
    ctx, steps = load_session(session)
    a = AuditCollector(url, token, policy="fail_closed", durable_timeout=1.0, retry_max=0.1)
    kw = dict(trace_id=ctx["trace_id"], agent=ctx["agent"], model=ctx["model"])
    n = 0
    try:
        async for _ in a.wrap(stream(steps), session_id=ctx["session_id"], **kw):
            n += 1
        say("released", n)
        say("no error")
        return 1
    except AuditUnavailable as e:
        say("released", n)
        say("raised", e)
    await readline()
    n = 0
    async for _ in a.wrap(stream(steps), session_id=ctx["session_id"] + "-after", **kw):
        n += 1
    await a.aclose()
    say("released", n)
    say("ok")
    return 0


def main():
    mode = sys.argv[1]
    if mode == "fail_open":
        return asyncio.run(fail_open(*sys.argv[2:6]))
    return asyncio.run(fail_closed(*sys.argv[2:5]))


if __name__ == "__main__":
    sys.exit(main())

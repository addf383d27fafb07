#!/usr/bin/env python3
"""Replay a recorded agent session through AuditCollector, then read it back.

Usage:
  replay.py --url http://127.0.0.1:8080 --token $TOKEN examples/python/session.jsonl

The session file is JSON lines: a header {"context": {...}} (the request
context: session_id, trace_id, agent, model, auth_mode), then one step
event per line in stream order (README.md, "session.jsonl"). Each step is
yielded by an async generator standing in for an agent server's
astep_stream(), wrapped by vellum_audit.AuditCollector exactly as a live
server would wrap it, and posted to POST /v1/audit/steps. Then the records
of the session are read back with GET /v1/audit?session_id=... (every
page) and printed, one JSON record per line, on stdout; a summary goes to
stderr. The token must be allowed to ingest and to read (an admin token,
or --read-token for a separate auditor token).

A refused step is named by its place in the stream ("stream step 2"):
step N is line N + 1 of the file.

Exit status: 0 every step stored and read back; 1 a step rejected, not
durable, or no record found; 2 usage or I/O error.
Standard library only.
"""

import argparse
import asyncio
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vellum_audit import AuditCollector, AuditError  # noqa: E402


def load_session(path):
    """Return (context, steps) of a session file, or raise ValueError naming the line."""
    context, steps = None, []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise ValueError("%s:%d: not JSON: %s" % (path, n, e)) from None
            if not isinstance(obj, dict):
                raise ValueError("%s:%d: want a JSON object" % (path, n))
            if context is None:
                ctx = obj.get("context")
                if not isinstance(ctx, dict) or not isinstance(ctx.get("session_id"), str) or not ctx["session_id"]:
                    raise ValueError('%s:%d: the first line must be {"context": {"session_id": ..., ...}}' % (path, n))
                context = ctx
                continue
            if not isinstance(obj.get("type"), str):
                raise ValueError("%s:%d: a step needs a string \"type\"" % (path, n))
            steps.append(obj)
    if context is None:
        raise ValueError("%s: empty session file" % path)
    return context, steps


async def astep_stream(steps):
    """Stands in for an agent server's astep_stream(): yields the recorded steps."""
    for s in steps:
        yield s
        await asyncio.sleep(0)


CONTEXT_ARGS = ("trace_id", "agent", "model", "auth_mode")


async def replay(url, token, context, steps, policy, timeout, tenant=None, user=None):
    audit = AuditCollector(url, token, policy=policy, durable_timeout=timeout)
    seen = 0
    kw = {k: context[k] for k in CONTEXT_ARGS if context.get(k)}
    kw.update(tenant=tenant, user=user)
    try:
        async for event in audit.wrap(astep_stream(steps), session_id=context["session_id"], **kw):
            assert event is steps[seen], "the collector must pass events through unchanged"
            seen += 1
        flushed = await audit.flush(timeout)
    finally:
        await audit.aclose(timeout=1.0)
    return seen, flushed, audit.status()


def query(url, token, session_id):
    """Every record of session_id, oldest first, following next_cursor."""
    out, cursor = [], None
    while True:
        params = {"session_id": session_id, "limit": "1000"}
        if cursor:
            params["cursor"] = cursor
        req = urllib.request.Request(url.rstrip("/") + "/v1/audit?" + urllib.parse.urlencode(params),
                                     headers={"Authorization": "Bearer " + token, "Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            page = json.load(resp)
        out.extend(page.get("records") or [])
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="vellum serve's base URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--token", required=True, help="a token that may ingest (and read, unless --read-token)")
    ap.add_argument("--read-token", help="a token for GET /v1/audit (default: --token)")
    ap.add_argument("--policy", choices=("fail_closed", "fail_open"), default="fail_closed",
                    help="the collector's failure policy (default fail_closed: stop at the first step not stored)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds a step may take to become durable")
    ap.add_argument("--tenant", help="send X-Tenant (honoured only if Vellum trusts the token as a gateway)")
    ap.add_argument("--user", help="send X-Auth-Subject (honoured only if Vellum trusts the token as a gateway)")
    ap.add_argument("session", help="a session file (JSON lines)")
    a = ap.parse_args(argv)
    try:
        context, steps = load_session(a.session)
    except (OSError, ValueError) as e:
        print("replay: %s" % e, file=sys.stderr)
        return 2
    try:
        seen, flushed, st = asyncio.run(replay(a.url, a.token, context, steps, a.policy, a.timeout, a.tenant, a.user))
    except AuditError as e:
        print("replay: FAILED: %s" % e, file=sys.stderr)
        return 1
    except ValueError as e:
        print("replay: %s" % e, file=sys.stderr)
        return 2
    print("replay: %d steps replayed, %d acknowledged, %d records stored, %d rejected, %d dropped, %d failed posts"
          % (seen, st["sent"], st["records"], st["rejected"], st["dropped"], st["failures"]), file=sys.stderr)
    if st["rejected"] or st["dropped"] or not flushed or st["sent"] != len(steps):
        print("replay: FAILED: not every step was stored%s"
              % (" (last error: %s)" % st["last_error"] if st["last_error"] else ""), file=sys.stderr)
        return 1
    try:
        records = query(a.url, a.read_token or a.token, context["session_id"])
    except urllib.error.HTTPError as e:
        print("replay: GET /v1/audit: %d %s" % (e.code, e.read()[:300].decode("utf-8", "replace")), file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print("replay: GET /v1/audit: %s" % e, file=sys.stderr)
        return 1
    for r in records:
        print(json.dumps(r, separators=(",", ":")))
    print("replay: %d records of session %s read back" % (len(records), context["session_id"]), file=sys.stderr)
    return 0 if records else 1


if __name__ == "__main__":
    sys.exit(main())

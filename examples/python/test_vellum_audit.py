"""Unit tests of vellum_audit.py and replay.py's file reader.

Run: python3 -m unittest discover -s examples/python -p 'test_*.py'

The server here is a small stand-in of POST /v1/audit/steps written from
its spec (docs/events.md), so the collector's policies can be driven
through outages in a second; the Go tests in cmd/vellum run the same code
against the real `vellum serve`.
"""

import asyncio
import dataclasses
import gzip
import http.server
import json
import os
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import replay  # noqa: E402
import vellum_audit  # noqa: E402
from vellum_audit import AuditCollector, AuditRejected, AuditUnavailable  # noqa: E402

TOKEN = "test-token-0123456789"
KNOWN = {"request_start", "reasoning_delta", "content_delta", "tool_call_delta", "tool_result",
         "permission_decision", "question_asked", "question_answered", "guardrail", "limit_exceeded",
         "loop_break", "subagent_invoked", "subagent_completed", "subagent_failed", "stream_complete",
         "request_end"}


class StepServer:
    """A stand-in for POST /v1/audit/steps that stores what it accepts.

    mode: "ok"; "500" answers 500; "hold" holds each request until
    release is set; "lose" stores the request's steps and closes the
    connection without an answer (once, then "ok"). Unknown step types are
    refused with 400 as the spec says, naming the index. context.first_step
    is honoured as docs/events.md says: per session the count of consumed
    steps (next), a resend's consumed steps skipped, a gap a 409 naming
    expected and got.
    """

    def __init__(self, port=0):
        self.lock = threading.Lock()
        self.stored = []  # (context, step, headers) in acceptance order
        self.events = []  # what POST /v1/audit/events accepted
        self.posts = 0
        self.gzipped = 0
        self.mode = "ok"
        self.next = {}  # session -> steps consumed
        self.release = threading.Event()
        self.port = port
        self.start()

    def start(self):
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.posts += 1
                    mode = outer.mode
                if mode == "hold":
                    outer.release.wait(10)
                if self.headers.get("Authorization") != "Bearer " + TOKEN:
                    return self.answer(401, {"detail": "bad token"})
                if self.path == "/v1/audit/events" and mode == "ok":
                    evs = json.loads(body)
                    with outer.lock:
                        outer.events.extend(evs)
                    return self.answer(200, {"seqs": list(range(len(evs)))})
                if self.path != "/v1/audit/steps":
                    return self.answer(404, {"detail": "no route"})
                if mode == "500":
                    return self.answer(500, {"detail": "store failing"})
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                    with outer.lock:
                        outer.gzipped += 1
                req = json.loads(body)
                steps = req["steps"]
                for i, s in enumerate(steps):
                    if s.get("type") not in KNOWN:
                        return self.answer(400, {"detail": "steps[%d].type: unknown step type %r" % (i, s.get("type"))})
                ctx = req["context"]
                sess = ctx["session_id"]
                with outer.lock:
                    k = outer.next.get(sess)
                    first = ctx.get("first_step")
                    skip = 0
                    if first is not None and k is not None and first != k:
                        if first > k or first + len(steps) < k:
                            return self.answer(409, {"detail": "context.first_step: expected %d, got %d: not the next" % (k, first)})
                        skip = k - first
                    base = first if first is not None and k is None else (k or 0)
                    for s in steps[skip:]:
                        outer.stored.append((ctx, s, dict(self.headers)))
                    outer.next[sess] = base + len(steps) - skip if first is not None else (k or 0) + len(steps)
                    nxt = outer.next[sess]
                    if outer.mode == "lose":
                        outer.mode = "ok"
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                self.answer(200, {"steps": len(steps), "records": len(steps) - skip, "skipped": skip, "next_step": nxt})

            def answer(self, code, obj):
                b = json.dumps(obj).encode()
                # One write: headers and body in separate segments would
                # meet the client's delayed ACK (40 ms a request).
                self.wfile.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                                 % (code, len(b)) + b)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def steps(self, session_id=None):
        with self.lock:
            return [s for c, s, _ in self.stored if session_id is None or c["session_id"] == session_id]


def steps_of(n, session="s"):
    out = []
    for i in range(n):
        out.append({"type": "tool_result", "call_id": "c%d" % i, "name": "t", "content": "r%d" % i,
                    "is_error": False, "ts": "2026-11-29T10:00:00.%09dZ" % i})
    return out


async def gen(events, between=None):
    for e in events:
        if between is not None:
            await between(e)
        yield e


async def drain(it):
    out = []
    async for e in it:
        out.append(e)
    return out


def run(coro, limit=30):
    # The outer bound only stops a hang from stalling the suite.
    return asyncio.run(asyncio.wait_for(coro, limit))


class CollectorTest(unittest.TestCase):
    def setUp(self):
        self.srv = StepServer()
        self.addCleanup(self.srv.stop)
        self.dir = tempfile.mkdtemp()

    def test_pass_through_and_order(self):
        sess = replay.load_session(os.path.join(os.path.dirname(__file__), "session.jsonl"))
        ctx, steps = sess

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_open", batch_size=4)
            got = await drain(a.wrap(gen(steps), session_id=ctx["session_id"], agent=ctx["agent"],
                                     trace_id=ctx["trace_id"], model=ctx["model"]))
            self.assertTrue(await a.flush(10))
            await a.aclose()
            return got, a.status()

        before = json.dumps(steps)
        got, st = run(go())
        self.assertEqual(len(got), len(steps))
        for g, s in zip(got, steps):
            self.assertIs(g, s)  # the same objects, unchanged
        self.assertEqual(json.dumps(steps), before)
        self.assertEqual(self.srv.steps(), steps)  # every step, in order, as recorded
        ctx_sent = self.srv.stored[0][0]
        self.assertEqual(ctx_sent, dict({k: ctx[k] for k in ("session_id", "trace_id", "agent", "model")}, first_step=0))
        # Every post says where it starts in the session: 0, 4, 8, ...
        firsts = sorted({c["first_step"] for c, _, _ in self.srv.stored})
        self.assertEqual(firsts, list(range(0, 30, 4)))
        self.assertEqual((st["steps"], st["sent"], st["rejected"], st["dropped"]), (30, 30, 0, 0))
        self.assertGreater(st["posts"], 1)

    def test_resend_after_lost_answer_is_stored_once(self):
        # The stand-in stores a batch and drops the connection before
        # answering: the collector sends it again with the same
        # first_step and the server skips what it has; every step once.
        steps = steps_of(10)

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_open", batch_size=4, retry_initial=0.01)
            self.srv.mode = "lose"
            await drain(a.wrap(gen(steps), session_id="s"))
            self.assertTrue(await a.flush(10))
            await a.aclose()
            return a.status()

        st = run(go())
        self.assertEqual(self.srv.steps("s"), steps)
        self.assertEqual(self.srv.next["s"], 10)
        self.assertEqual((st["sent"], st["rejected"], st["dropped"]), (10, 0, 0))

    def test_restarted_process_goes_on_from_vellums_count(self):
        # Vellum holds the session at step 7 (a previous process's steps):
        # this process's first post (first_step 0) is a 409 naming 7, and
        # the collector goes on from there, nothing lost.
        self.srv.next["s"] = 7
        steps = steps_of(5)

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_closed")
            await drain(a.wrap(gen(steps), session_id="s"))
            await a.aclose()
            return a.status()

        with self.assertLogs("vellum_audit", "WARNING") as logs:
            st = run(go())
        self.assertIn("Vellum expects step 7, this process counted 0", "\n".join(logs.output))
        self.assertEqual(self.srv.steps("s"), steps)
        self.assertEqual(self.srv.next["s"], 12)
        self.assertEqual((st["sent"], st["rejected"]), (5, 0))

    def test_failing_stream_sends_request_end_with_error(self):
        async def failing():
            yield {"type": "request_start"}
            raise RuntimeError("model backend unreachable")

        for policy in ("fail_closed", "fail_open"):
            async def go():
                a = AuditCollector(self.srv.url, TOKEN, policy=policy)
                got = []
                with self.assertRaises(RuntimeError) as cm:
                    async for e in a.wrap(failing(), session_id="f-" + policy):
                        got.append(e)
                self.assertEqual(str(cm.exception), "model backend unreachable")  # the stream's own
                self.assertTrue(await a.flush(10))
                await a.aclose()
                return got

            self.assertEqual(len(run(go())), 1)
            sent = self.srv.steps("f-" + policy)
            self.assertEqual([s["type"] for s in sent], ["request_start", "request_end"], policy)
            self.assertEqual(sent[1]["error"], "RuntimeError: model backend unreachable")
            self.assertIn("ts", sent[1])

    def test_sessions_interleaved_keep_their_order(self):
        async def session(a, name):
            await drain(a.wrap(gen(steps_of(50), between=lambda e: asyncio.sleep(0)), session_id=name))

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, batch_size=16)
            await asyncio.gather(*(session(a, "s%d" % i) for i in range(8)))
            self.assertTrue(await a.flush(10))
            await a.aclose()

        run(go())
        for i in range(8):
            self.assertEqual([s["content"] for s in self.srv.steps("s%d" % i)], ["r%d" % j for j in range(50)])

    def test_ts_added_when_missing_and_identity_headers(self):
        async def go():
            a = AuditCollector(self.srv.url, TOKEN)
            await drain(a.wrap(gen([{"type": "request_start"}]), session_id="s", tenant="acme", user="alice"))
            await a.flush(10)
            await a.aclose()

        run(go())
        ctx, step, headers = self.srv.stored[0]
        self.assertRegex(step["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
        self.assertEqual((headers.get("X-Tenant"), headers.get("X-Auth-Subject")), ("acme", "alice"))

    def test_gzip_large_bodies(self):
        async def go():
            a = AuditCollector(self.srv.url, TOKEN, gzip_min_bytes=100)
            await drain(a.wrap(gen(steps_of(20)), session_id="s"))
            await a.flush(10)
            await a.aclose()

        run(go())
        self.assertGreater(self.srv.gzipped, 0)
        self.assertEqual(len(self.srv.steps()), 20)

    def test_dataclass_events(self):
        @dataclasses.dataclass
        class ToolResult:
            call_id: str
            name: str
            content: str
            is_error: bool
            type: str = "tool_result"

        ev = ToolResult("c1", "t", "x", True)

        async def go():
            a = AuditCollector(self.srv.url, TOKEN)
            got = await drain(a.wrap(gen([ev]), session_id="s"))
            await a.flush(10)
            await a.aclose()
            return got

        self.assertIs(run(go())[0], ev)
        s = self.srv.steps()[0]
        self.assertEqual((s["type"], s["call_id"], s["is_error"]), ("tool_result", "c1", True))

    def test_step_is_captured_when_yielded(self):
        # What is sent is the step as the stream yielded it, even if the
        # agent changes the object afterwards (fail_open sends later).
        ev = {"type": "tool_result", "call_id": "c1", "name": "t", "content": "before", "is_error": False}

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_open")
            async for e in a.wrap(gen([ev]), session_id="s"):
                e["content"] = "after"
            await a.flush(10)
            await a.aclose()

        run(go())
        self.assertEqual(self.srv.steps()[0]["content"], "before")

    def test_unencodable_step(self):
        bad = {"type": "tool_result", "call_id": "c1", "content": "\ud800"}  # a lone surrogate

        async def go(policy):
            a = AuditCollector(self.srv.url, TOKEN, policy=policy)
            try:
                got = await drain(a.wrap(gen([bad] + steps_of(1)), session_id=policy))
                await a.flush(10)
                return got, a.status()
            finally:
                await a.aclose()

        with self.assertLogs("vellum_audit", "ERROR"):
            got, st = run(go("fail_open"))
        self.assertEqual((len(got), st["rejected"], st["sent"]), (2, 1, 1))
        with self.assertRaisesRegex(AuditRejected, "cannot be encoded"):
            run(go("fail_closed"))

    def test_fail_closed_releases_after_durable(self):
        # Each non-delta event is stored before the caller sees it.
        events = [{"type": "tool_call_delta", "index": 0, "call_id": "c", "name": "t", "arguments": "{}"}] + steps_of(5)
        seen_stored = []

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_closed")
            async for e in a.wrap(gen(events), session_id="s"):
                seen_stored.append(len(self.srv.steps()))
            await a.aclose()

        run(go())
        # The delta passes at once; each tool_result only once it (and the
        # delta before it) is stored.
        self.assertEqual(seen_stored[1:], [2, 3, 4, 5, 6])
        self.assertEqual(len(self.srv.steps()), 6)

    def test_fail_closed_raises_when_store_down(self):
        self.srv.stop()

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_closed", durable_timeout=0.5)
            released = []
            with self.assertRaises(AuditUnavailable) as cm:
                async for e in a.wrap(gen(steps_of(3)), session_id="s"):
                    released.append(e)
            await a.aclose(timeout=0.1)
            return released, a.status(), cm.exception

        released, st, exc = run(go())
        self.assertEqual(released, [])  # nothing reached the client unaudited
        self.assertIn("not durable within", str(exc))
        self.assertGreaterEqual(st["failures"], 1)
        self.assertEqual(st["timeouts"], 1)
        self.assertFalse(st["healthy"])

    def test_fail_closed_rejected(self):
        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_closed")
            with self.assertRaises(AuditRejected) as cm:
                await drain(a.wrap(gen([{"type": "bogus"}]), session_id="s"))
            await a.aclose()
            return cm.exception

        self.assertIn('unknown step type', str(run(go())))

    def test_fail_closed_recovers_after_outage(self):
        # A step that times out fails; once the store is back, the next
        # request is audited again.
        self.srv.mode = "500"

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_closed", durable_timeout=0.3, retry_max=0.05)
            with self.assertRaises(AuditUnavailable):
                await drain(a.wrap(gen(steps_of(1)), session_id="a"))
            # A post already on the wire when the caller gave up may still
            # land; let it meet the failing store first.
            await asyncio.sleep(0.2)
            self.srv.mode = "ok"
            got = await drain(a.wrap(gen(steps_of(2)), session_id="b"))
            await a.aclose()
            return got

        self.assertEqual(len(run(go())), 2)
        self.assertEqual(len(self.srv.steps("b")), 2)
        self.assertEqual(self.srv.steps("a"), [])  # the abandoned step was not stored later

    def test_fail_open_rejects_only_the_bad_step(self):
        events = steps_of(3) + [{"type": "bogus"}] + steps_of(4)

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_open", batch_size=100)
            self.srv.mode = "hold"  # so all 8 land in one batch
            it = a.wrap(gen(events), session_id="s")
            got = []
            async for e in it:
                got.append(e)
                if len(got) == 1:
                    await asyncio.sleep(0.05)
            self.srv.mode = "ok"
            self.srv.release.set()
            with self.assertLogs("vellum_audit", "ERROR") as logs:
                await a.flush(10)
            await a.aclose()
            return got, a.status(), logs.output

        got, st, logs = run(go())
        self.assertEqual(len(got), 8)
        self.assertEqual(st["rejected"], 1)
        self.assertEqual(st["sent"], 7)
        self.assertEqual(len(self.srv.steps()), 7)
        self.assertIn("unknown step type", "".join(logs))

    def test_fail_open_spills_and_replays_in_order(self):
        spill = os.path.join(self.dir, "audit.spill")
        port = self.srv.port
        self.srv.stop()

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_open", spill_path=spill, retry_initial=0.02, retry_max=0.05,
                               max_pending=5)
            with self.assertLogs("vellum_audit", "WARNING"):
                got = await drain(a.wrap(gen(steps_of(40), between=lambda e: asyncio.sleep(0.001)), session_id="s"))
            self.assertEqual(len(got), 40)  # the agent went on
            st = a.status()
            self.assertFalse(st["healthy"])
            self.assertGreater(st["failures"], 0)
            self.assertGreater(st["spill_pending"], 0)
            self.srv.__init__(port)  # the store is back, same address
            self.assertTrue(await a.flush(10))
            await a.aclose()
            return a.status()

        st = run(go())
        self.assertEqual([s["content"] for s in self.srv.steps()], ["r%d" % i for i in range(40)])
        self.assertEqual((st["sent"], st["dropped"], st["spill_pending"]), (40, 0, 0))
        self.assertEqual(os.path.getsize(spill), 0)

    def test_fail_open_order_when_the_store_fails_with_memory_and_spill_in_use(self):
        # One post hangs while the agent streams on: memory fills, later
        # steps go to the spill; then the post fails. The older steps in
        # memory must still go before the spilled ones.
        spill = os.path.join(self.dir, "audit.spill")
        self.srv.mode = "hold"

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_open", spill_path=spill, max_pending=3,
                               retry_initial=0.02, retry_max=0.05)
            await drain(a.wrap(gen(steps_of(20), between=lambda e: asyncio.sleep(0.002)), session_id="s"))
            st = a.status()
            self.assertGreater(st["spill_pending"], 0)
            self.assertGreater(st["queued"], 1)
            self.srv.mode = "500"
            self.srv.release.set()
            await asyncio.sleep(0.1)
            self.srv.mode = "ok"
            self.assertTrue(await a.flush(10))
            await a.aclose()
            return a.status()

        st = run(go())
        self.assertEqual([s["content"] for s in self.srv.steps()], ["r%d" % i for i in range(20)])
        self.assertEqual((st["sent"], st["dropped"]), (20, 0))

    def test_fail_open_spill_survives_restart(self):
        spill = os.path.join(self.dir, "audit.spill")
        port = self.srv.port
        self.srv.stop()

        async def first():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_open", spill_path=spill, retry_initial=0.02, retry_max=0.05)
            await drain(a.wrap(gen(steps_of(10)), session_id="s"))
            await a.aclose(timeout=0.2)
            return a.status()

        st = run(first())
        self.assertEqual(st["dropped"], 0)
        self.assertGreater(os.path.getsize(spill), 0)
        self.assertEqual(os.stat(spill).st_mode & 0o777, 0o600)  # unredacted steps: owner only

        self.srv.__init__(port)

        async def second():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_open", spill_path=spill)
            more = [dict(s, content="later%d" % i) for i, s in enumerate(steps_of(2))]
            await drain(a.wrap(gen(more), session_id="s"))
            self.assertTrue(await a.flush(10))
            await a.aclose()

        run(second())
        self.assertEqual([s["content"] for s in self.srv.steps()],
                         ["r%d" % i for i in range(10)] + ["later0", "later1"])

    def test_fail_open_full_spill_is_counted_and_logged(self):
        spill = os.path.join(self.dir, "audit.spill")
        self.srv.stop()
        self.srv.stop = lambda: None

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_open", spill_path=spill, spill_max_bytes=2000, max_pending=2,
                               retry_initial=0.02)
            with self.assertLogs("vellum_audit", "ERROR") as logs:
                got = await drain(a.wrap(gen(steps_of(50), between=lambda e: asyncio.sleep(0.001)), session_id="s"))
            await a.aclose(timeout=0.1)
            return got, a.status(), logs.output

        got, st, logs = run(go())
        self.assertEqual(len(got), 50)
        self.assertGreater(st["dropped"], 0)
        self.assertLessEqual(os.path.getsize(spill), 2000)
        self.assertTrue(any("DROPPED" in line for line in logs))

    def test_dropped_steps_are_recorded_once_vellum_is_back(self):
        spill = os.path.join(self.dir, "audit.spill")
        port = self.srv.port
        self.srv.stop()

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_open", spill_path=spill, spill_max_bytes=1000, max_pending=2,
                               retry_initial=0.02, retry_max=0.05, report_tenant="acme")
            with self.assertLogs("vellum_audit", "ERROR"):
                await drain(a.wrap(gen(steps_of(20), between=lambda e: asyncio.sleep(0.001)), session_id="s"))
            dropped = a.status()["dropped"]
            self.assertIn("audit store failing", a.ready())
            self.srv.__init__(port)
            self.assertTrue(await a.flush(10))
            for _ in range(200):
                if a.ready() is None:
                    break
                await asyncio.sleep(0.01)
            st = a.status()
            await a.aclose()
            return dropped, st

        dropped, st = run(go())
        self.assertGreater(dropped, 0)
        self.assertEqual(st["reported"], dropped)
        self.assertEqual(st["sent"] + dropped, 20)
        self.assertEqual(len(self.srv.events), 1)
        ev = self.srv.events[0]
        self.assertEqual((ev["action"], ev["tenant_id"], ev["outcome"]["status"], ev["attributes"]["dropped"]),
                         ("audit.dropped", "acme", "failure", str(dropped)))

    def test_fail_open_full_queue_without_spill(self):
        self.srv.stop()
        self.srv.stop = lambda: None

        async def go():
            a = AuditCollector(self.srv.url, TOKEN, policy="fail_open", max_pending=3, retry_initial=0.5)
            with self.assertLogs("vellum_audit", "ERROR") as logs:
                got = await drain(a.wrap(gen(steps_of(10)), session_id="s"))
            st = a.status()
            await a.aclose(timeout=0.1)
            return got, st, logs.output

        got, st, logs = run(go())
        self.assertEqual(len(got), 10)
        self.assertGreaterEqual(st["dropped"], 6)
        self.assertTrue(any("DROPPED (queue full)" in line for line in logs))

    def test_bad_options_refused(self):
        for kw, want in [({"policy": "maybe"}, "policy"), ({"durable_timeout": 0}, "durable_timeout"),
                         ({"max_pending": 0}, "max_pending"),
                         ({"policy": "fail_closed", "spill_path": "x"}, "spill_path")]:
            with self.assertRaisesRegex(ValueError, want):
                AuditCollector(self.srv.url, TOKEN, **kw)
        self.assertEqual(AuditCollector(self.srv.url, TOKEN).policy, "fail_closed")  # as in Go
        with self.assertRaisesRegex(ValueError, "http"):
            AuditCollector("ftp://x", TOKEN)

    def test_rfc3339_ns(self):
        self.assertEqual(vellum_audit.rfc3339_ns(1_764_410_400_000_000_001), "2025-11-29T10:00:00.000000001Z")


class SessionFileTest(unittest.TestCase):
    def write(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.remove, f.name)
        return f.name

    def test_checked_in_session(self):
        ctx, steps = replay.load_session(os.path.join(os.path.dirname(__file__), "session.jsonl"))
        self.assertEqual(ctx["session_id"], "sess-py-0001")
        types = [s["type"] for s in steps]
        for t in KNOWN:
            self.assertIn(t, types)
        self.assertIn({"deny"}, [{s["action"]} for s in steps if s["type"] == "permission_decision"])
        # call_1's arguments arrive in three fragments that parse only joined.
        first = types.index("tool_call_delta")
        frags = [s["arguments"] for s in steps[first:first + 3]]
        self.assertEqual(types[first:first + 4], ["tool_call_delta"] * 3 + ["permission_decision"])
        for f in frags:
            with self.assertRaises(ValueError):
                json.loads(f)
        json.loads("".join(frags))

    def test_errors_name_the_line(self):
        for text, want in [("", "empty"), ('{"steps": []}\n', ":1: the first line"),
                           ('{"context": {"session_id": "s"}}\n{"type": 1}\n', ":2: a step needs"),
                           ('{"context": {"session_id": "s"}}\nnope\n', ":2: not JSON")]:
            with self.assertRaisesRegex(ValueError, want):
                replay.load_session(self.write(text))


if __name__ == "__main__":
    unittest.main()

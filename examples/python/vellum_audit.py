"""Audit an agent server's step stream into Vellum, with the standard library.

An agent server of this ecosystem yields step events from an async
generator, ``astep_stream()``. ``AuditCollector.wrap`` wraps that iterator
the way Vellum's Go collector wraps an ``iter.Seq2``: every event passes
through unchanged, and a copy of each, in the wire shape of
``POST /v1/audit/steps``, is sent to ``vellum serve`` in the background,
batched per session. The server turns steps into audit records (one per significant
event: tool call with its accumulated arguments, tool result, permission
decision, approval, guardrail, limit, ...).

Adopting it takes a few lines::

    from vellum_audit import AuditCollector

    audit = AuditCollector("http://127.0.0.1:8080", token=os.environ["VELLUM_TOKEN"],
                           policy="fail_open", spill_path="/var/lib/agent/audit.spill")

    async def handle(request):
        async for event in audit.wrap(agent.astep_stream(request.message),
                                      session_id=request.session_id, agent="support-bot"):
            yield event

    # on shutdown:  await audit.aclose()
    # in /readyz:   audit.ready() is None (else: why not)

Failure policy (NIST SP 800-53 AU-5), chosen per deployment:

``fail_closed``
    An event that produces an audit record is released to the caller only
    once the batch holding it is durable in Vellum (the server answers
    only after fsync). Deltas (``reasoning_delta``, ``content_delta``,
    ``tool_call_delta``) carry no record of their own and pass at once;
    the record they feed (the tool call, the model decision) is made
    durable before the step that completes it is released, and the end of
    the stream waits for everything. If that does not happen within
    ``durable_timeout`` seconds, the wrapped iterator raises
    ``AuditUnavailable`` (``AuditRejected`` when the server refused the
    step), so the agent's step fails instead of running unaudited.

``fail_open``
    The agent goes on. Failed posts are counted, logged and retried in
    order with backoff. Steps wait in a bounded in-memory queue
    (``max_pending``) and, when ``spill_path`` is set, in a bounded spill
    file (``spill_max_bytes``) that is replayed in order when Vellum is
    back, also after a restart of this process. When both are full, a
    step is dropped: counted in ``status()["dropped"]``, logged, and
    recorded in Vellum as an ``audit.dropped`` event once it is back;
    never silently.

Delivery is exactly once: every post says where its first step stands
in the session (``context.first_step``, counted per session from the
answers of Vellum, which says ``next_step``), so a post whose answer was
lost (the connection broke after the server stored it) is sent again and
Vellum skips the steps it has already consumed; were Vellum restarted in
between, the records of the resent steps carry the same event ids and its
store keeps them once. Limits (docs/events.md, "Exactly once"): this
process counts a session's steps from the answers it got; after a restart
of this process, its first post of a session Vellum still holds state for
is answered 409 with the step Vellum expects, and the collector goes on
from there (logged). A batch whose answer was lost just before this
process restarted is then stored twice (at least once, in that case
only).

A stream that raises is recorded: a ``request_end`` step with ``error``
(the exception's type and message) is sent, then the exception goes on
to the caller (Vellum records ``request.end`` with status failure).

Concurrency: one collector per process and event loop; ``wrap`` may run
for many requests at once. Steps go out in order per session, one request
in flight per session and up to max_connections for different sessions.
The HTTP calls (http.client, kept-alive connections) run in the
collector's own worker threads; the loop never blocks on the network.
Logs never contain step contents or the token.

Spec: POST /v1/audit/steps in Vellum's server/openapi.yaml and
docs/events.md.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import gzip
import http.client
import json
import logging
import os
import re
import time
import urllib.parse

__all__ = ["AuditCollector", "AuditError", "AuditUnavailable", "AuditRejected", "step_of", "rfc3339_ns"]

log = logging.getLogger("vellum_audit")

FAIL_CLOSED = "fail_closed"
FAIL_OPEN = "fail_open"

# Steps that carry no audit record of their own: under fail_closed they are
# released at once (the record they feed waits for the step that ends it).
DELTA_TYPES = frozenset({"reasoning_delta", "content_delta", "tool_call_delta"})

STEPS_PATH = "/v1/audit/steps"
EVENTS_PATH = "/v1/audit/events"


class AuditError(Exception):
    """Base of the errors the wrapped stream raises under fail_closed."""


class AuditUnavailable(AuditError):
    """A step's audit record was not durable within durable_timeout."""


class AuditRejected(AuditError):
    """Vellum refused a step (a 4xx other than 401/403/408/429)."""


def rfc3339_ns(ns: int) -> str:
    """Format a Unix time in nanoseconds as RFC 3339 UTC with nanoseconds."""
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%09dZ" % frac


def step_of(event) -> dict:
    """Return the wire form of a step event, a new dict (event is not changed).

    Accepts a mapping with "type", a dataclass instance, or an object with
    model_dump() (pydantic) or to_dict(). Raises TypeError otherwise.
    """
    if isinstance(event, dict):
        d = dict(event)
    elif dataclasses.is_dataclass(event) and not isinstance(event, type):
        d = dataclasses.asdict(event)
    elif hasattr(event, "model_dump"):
        d = event.model_dump()
    elif hasattr(event, "to_dict"):
        d = event.to_dict()
    else:
        raise TypeError("step event of type %s is not a dict, dataclass or model" % type(event).__name__)
    if not isinstance(d, dict) or not isinstance(d.get("type"), str) or not d["type"]:
        raise TypeError("step event has no string field 'type'")
    return d


def _encode(obj) -> bytes:
    """Compact UTF-8 JSON; values JSON has no form for become strings."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode()


class _Entry:
    """One step on its way to Vellum. The step is kept as JSON text,
    encoded when it arrived: what is sent is what the stream yielded then,
    even if the agent changes the object afterwards."""

    __slots__ = ("key", "lane", "context", "ident", "type", "step", "n", "future", "deadline", "abandoned", "settled")

    def __init__(self, key, context, ident, type_, step, n=0, future=None, deadline=None):
        self.key = key  # (context, identity) as a hashable
        # (session, identity): one lane per session as Vellum keys its
        # state, so a session's posts go one at a time, in order.
        self.lane = (context.get("session_id"), tuple(sorted(ident.items())))
        self.context = context
        self.ident = ident
        self.type = type_
        self.step = step  # UTF-8 JSON
        self.future = future  # fail_closed: resolved when durable
        self.deadline = deadline  # fail_closed: when the caller gives up
        self.n = n  # the step's position in its stream, from 1 (0: unknown)
        self.abandoned = False  # fail_closed: the caller gave up on it
        self.settled = False  # stored or refused for good: never sent again

    def to_line(self) -> bytes:
        return (b'{"context":%s,"identity":%s,"n":%d,"step":%s}\n'
                % (_encode(self.context), _encode(self.ident), self.n, self.step))

    @classmethod
    def from_line(cls, line: bytes) -> "_Entry":
        d = json.loads(line)
        ctx, ident, step = d["context"], d.get("identity") or {}, d["step"]
        return cls(_key(ctx, ident), ctx, ident, step["type"], _encode(step), d.get("n") or 0)


def _key(context: dict, ident: dict):
    return (tuple(sorted(context.items())), tuple(sorted(ident.items())))


# A 409 on context.first_step names the step Vellum expects.
_FIRST_STEP = re.compile(r"context\.first_step: expected (\d+), got (\d+)")

# How many sessions' step counts are kept (least recently used forgotten:
# a forgotten session re-learns its count from a 409).
MAX_SESSIONS = 100_000

# Bound of the error text of a failed stream's request_end.
MAX_ERROR = 4096


class _PostError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind  # "retry", "reject", "too_large"


class _Spill:
    """A bounded append-only file of entries, read from the front.

    The read position survives a restart in <path>.offset, replaced
    atomically after each batch the server acknowledged; the file is cut
    to zero once everything in it is delivered.
    """

    def __init__(self, path: str, max_bytes: int):
        self.path = path
        self.max_bytes = max_bytes
        # 0600: it holds the steps as the agent yielded them, before
        # Vellum's redaction.
        self.f = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "ab+")
        self.size = self.f.seek(0, os.SEEK_END)
        self.read_off = 0
        try:
            with open(path + ".offset") as o:
                self.read_off = min(int(o.read().strip() or 0), self.size)
        except FileNotFoundError:
            pass
        self.count = self._count_unread()
        if self.size and self.read_off == self.size:
            self._reset()

    def _count_unread(self) -> int:
        self.f.seek(self.read_off)
        n = sum(1 for line in self.f if line.endswith(b"\n"))
        return n

    def pending(self) -> bool:
        return self.read_off < self.size

    def append(self, line: bytes) -> bool:
        if self.size + len(line) > self.max_bytes:
            return False
        self.f.seek(0, os.SEEK_END)
        self.f.write(line)
        self.f.flush()  # in the OS: survives this process crashing
        self.size += len(line)
        self.count += 1
        return True

    def sync(self):
        os.fsync(self.f.fileno())

    def read(self, limit: int):
        """Entries from the read position: a run of one context, at most limit."""
        self.f.seek(self.read_off)
        out, off, key = [], self.read_off, None
        while len(out) < limit:
            line = self.f.readline()
            if not line.endswith(b"\n"):
                break  # a torn last line (crash while appending): ignored
            try:
                e = _Entry.from_line(line)
            except (ValueError, KeyError, TypeError):
                log.error("vellum_audit: spill %s: unreadable line at offset %d skipped", self.path, off)
                off += len(line)
                continue
            if key is not None and e.key != key:
                break
            key = e.key
            off += len(line)
            out.append(e)
        return out, off

    def commit(self, off: int, n: int):
        self.read_off = off
        self.count = max(0, self.count - n)
        if self.read_off >= self.size:
            self._reset()
            return
        tmp = self.path + ".offset.tmp"
        with open(tmp, "w") as o:
            o.write(str(off))
            o.flush()
            os.fsync(o.fileno())
        os.replace(tmp, self.path + ".offset")

    def _reset(self):
        self.f.truncate(0)
        self.f.flush()
        self.size = self.read_off = self.count = 0
        try:
            os.remove(self.path + ".offset")
        except FileNotFoundError:
            pass

    def close(self):
        self.f.close()


class AuditCollector:
    """Wraps step streams and batches their steps to vellum serve.

    url is the server's base URL (http or https); token an ingest token.
    With no options it is fail_closed with a 5-second bound, as the Go
    collector is; every bound is a keyword argument:

    - policy: "fail_closed" (the default) or "fail_open".
    - durable_timeout: fail_closed's bound, in seconds, from a step's
      arrival to its record being durable.
    - max_pending: steps held in memory (both policies). fail_closed waits
      for room (within durable_timeout); fail_open spills or drops.
    - spill_path, spill_max_bytes: fail_open's spill file and its bound.
    - batch_size: most steps of one session per request.
    - max_connections: requests in flight at once (16), each for another
      session; the store's group commit makes them share an fsync.
    - request_timeout: one POST's socket timeout, in seconds.
    - retry_initial, retry_max: fail_open's backoff between attempts.
    - gzip_min_bytes: bodies at least this long are sent gzip-compressed
      (None: never).
    - report_tenant: the tenant_id of the audit.dropped record that
      reports dropped steps once Vellum is back (needed when the token is
      limited to tenants).
    """

    def __init__(self, url: str, token: str, *, policy: str = FAIL_CLOSED, durable_timeout: float = 5.0,
                 max_pending: int = 10_000, spill_path: str | None = None,
                 spill_max_bytes: int = 64 << 20, batch_size: int = 256, request_timeout: float = 5.0,
                 retry_initial: float = 0.1, retry_max: float = 5.0, gzip_min_bytes: int | None = 1024,
                 report_tenant: str | None = None, max_connections: int = 16):
        if policy not in (FAIL_OPEN, FAIL_CLOSED):
            raise ValueError("policy %r is not fail_open or fail_closed" % (policy,))
        if policy == FAIL_CLOSED and spill_path:
            raise ValueError("spill_path is for fail_open: under fail_closed a step waits for Vellum instead")
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("url %r is not an http(s) URL" % (url,))
        for name, v in (("durable_timeout", durable_timeout), ("request_timeout", request_timeout),
                        ("retry_initial", retry_initial), ("retry_max", retry_max)):
            if not v > 0:
                raise ValueError("%s must be > 0, got %r" % (name, v))
        for name, v in (("max_pending", max_pending), ("batch_size", batch_size), ("spill_max_bytes", spill_max_bytes),
                        ("max_connections", max_connections)):
            if not (isinstance(v, int) and v > 0):
                raise ValueError("%s must be a positive integer, got %r" % (name, v))
        self._url = u
        self._token = token
        self.policy = policy
        self.durable_timeout = durable_timeout
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.request_timeout = request_timeout
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.gzip_min_bytes = gzip_min_bytes
        self.report_tenant = report_tenant
        self._unreported = 0  # dropped steps no audit.dropped record reports yet
        self._report_id = None  # the event_id of that record, kept across retries
        self._spill = _Spill(spill_path, spill_max_bytes) if spill_path else None
        # Memory: one lane per (context, identity), in stream order. A lane
        # has at most one post in flight, so its steps arrive in order;
        # lanes are posted at once, up to max_connections.
        self._lanes: collections.OrderedDict = collections.OrderedDict()
        # lane -> the index of the session's next step, as Vellum answered.
        self._next_step: collections.OrderedDict = collections.OrderedDict()
        self._queued = 0  # steps in the lanes
        self._posting: dict = {}  # lane key -> the steps of its post in flight
        self._posts: set = set()  # the posts' tasks
        self._failed = None  # the first retryable error of the current round
        self.max_connections = max_connections
        self._idle = []  # kept-alive connections not in use
        self._conn_slots = None  # asyncio.Semaphore(max_connections), made in the loop
        self._executor = None  # the threads the HTTP calls run in
        self._task = None
        self._loop = None
        self._wake = None
        self._room = None
        self._closed = False
        self._stats = {"steps": 0, "sent": 0, "records": 0, "posts": 0, "failures": 0, "rejected": 0,
                       "dropped": 0, "reported": 0, "spilled": 0, "timeouts": 0}
        self._healthy = True
        self._last_error = ""
        self._last_drop_log = 0.0

    # ------------------------------------------------------------------ API

    async def wrap(self, stream, *, session_id: str, trace_id: str | None = None, agent: str | None = None,
                   model: str | None = None, auth_mode: str | None = None, tenant: str | None = None,
                   user: str | None = None):
        """Yield every event of the async iterator stream, unchanged, auditing each.

        session_id (required), trace_id, agent, model and auth_mode are the
        request context sent with its steps. tenant and user are sent as
        X-Tenant / X-Auth-Subject, which Vellum honours only in its
        trusted-gateway mode (otherwise the token's principal decides).
        Under fail_closed it raises AuditUnavailable or AuditRejected when
        a step's record cannot be made durable in time.
        """
        if not session_id:
            raise ValueError("session_id is required")
        context = {"session_id": session_id}
        for k, v in (("trace_id", trace_id), ("agent", agent), ("model", model), ("auth_mode", auth_mode)):
            if v:
                context[k] = v
        ident = {}
        if tenant:
            ident["tenant"] = tenant
        if user:
            ident["user"] = user
        key = _key(context, ident)
        self._start()
        closed = self.policy == FAIL_CLOSED
        last, seen = None, 0
        it = stream.__aiter__()
        try:
            while True:
                try:
                    event = await it.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    # The stream failed: recorded as request_end with the
                    # error, then the caller gets the exception.
                    await self._stream_failed(key, context, ident, exc, seen + 1, closed)
                    raise
                try:
                    step = step_of(event)
                except TypeError as e:
                    if closed:
                        raise AuditRejected(str(e)) from None
                    self._count_rejected(1, str(e))
                    yield event
                    continue
                if "ts" not in step:
                    step["ts"] = rfc3339_ns(time.time_ns())
                try:
                    text = _encode(step)
                except (TypeError, ValueError) as e:  # circular, a tuple key, a lone surrogate
                    if closed:
                        raise AuditRejected("step %s cannot be encoded as JSON: %s" % (step["type"], e)) from None
                    self._count_rejected(1, "step %s cannot be encoded as JSON: %s" % (step["type"], e))
                    yield event
                    continue
                seen += 1
                last = await self._put(_Entry(key, context, ident, step["type"], text, seen))
                if closed and step["type"] not in DELTA_TYPES:
                    await self._await_durable(last)
                yield event
            if closed and last is not None:
                await self._await_durable(last)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _stream_failed(self, key, context, ident, exc, n, closed):
        """Send request_end with the stream's error (fail_closed: wait until
        durable, within durable_timeout). An audit failure here is logged:
        the caller gets the stream's own exception."""
        err = ("%s: %s" % (type(exc).__name__, exc))[:MAX_ERROR]
        step = {"type": "request_end", "ts": rfc3339_ns(time.time_ns()), "error": err}
        try:
            e = await self._put(_Entry(key, context, ident, "request_end", _encode(step), n))
            if closed:
                await self._await_durable(e)
        except AuditError as ae:
            log.error("vellum_audit: the failed stream's request_end was not recorded: %s", ae)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every step handed over so far is delivered to Vellum
        (the spill file too); True if that happened within timeout."""
        return await self._flush(timeout, spill_ok=False)

    async def _flush(self, timeout, spill_ok):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queued or self._posts or (self._spill and self._spill.pending() and not (spill_ok and not self._healthy)):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if self._task is None or self._task.done():
                return False
            await asyncio.sleep(0.005)
        return True

    async def aclose(self, timeout: float = 5.0):
        """Flush for at most timeout seconds (while Vellum is away, steps in
        the spill file stay there for the next start), then stop. Under
        fail_open what is left in memory goes to the spill file (when set)
        or is counted as dropped."""
        if self._closed:
            return
        await self._flush(timeout, spill_ok=True)
        self._closed = True
        tasks = [t for t in [self._task, *self._posts] if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # What is left: the lanes (cancelled posts put their steps back).
        left = [e for lane in self._lanes.values() for e in lane]
        self._lanes, self._queued = collections.OrderedDict(), 0
        for e in left:
            if e.future is not None and not e.future.done():
                _fail(e.future, AuditUnavailable("collector closed before the step was durable"))
            elif self._spill is None or not self._spill_append(e):
                self._drop(1, "collector closed")
        if self._spill is not None:
            self._spill.sync()
            self._spill.close()
        for c in self._idle:
            c.close()
        self._idle = []
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def ready(self) -> str | None:
        """None while steps reach Vellum; otherwise why not, for a readiness
        check (the Go collector's Ready): Vellum failing, steps waiting in
        the spill, or dropped steps not yet reported."""
        if not self._healthy:
            return "audit store failing: %s" % self._last_error
        if self._spill is not None and self._spill.count:
            return "%d audit steps wait in the spill" % self._spill.count
        if self._unreported:
            return "%d audit steps dropped and not yet reported to Vellum" % self._unreported
        return None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()

    def status(self) -> dict:
        """Counters and health, for a readiness endpoint and alerts.

        healthy is False while the last post failed. steps: handed over;
        sent: acknowledged by Vellum; records: records it stored; failures:
        failed posts; rejected: steps Vellum refused; dropped: steps lost
        to a full queue and spill (each one also logged); reported: of
        those, how many an audit.dropped record in Vellum reports; timeouts:
        fail_closed steps that were not durable in time; queued: in
        memory; spill_pending: in the spill file.
        """
        s = dict(self._stats)
        s.update(policy=self.policy, healthy=self._healthy, last_error=self._last_error,
                 queued=self._queued + sum(len(v) for v in self._posting.values()),
                 spill_pending=self._spill.count if self._spill else 0,
                 spill_bytes=(self._spill.size - self._spill.read_off) if self._spill else 0)
        return s

    # ------------------------------------------------------------ the queue

    def _start(self):
        if self._closed:
            raise RuntimeError("AuditCollector is closed")
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done():
            if loop is not self._loop:
                raise RuntimeError("AuditCollector is bound to another event loop")
            return
        self._loop = loop
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._conn_slots = asyncio.Semaphore(self.max_connections)
        if self._executor is None:
            # Its own threads: asyncio.to_thread's shared pool has
            # min(32, CPUs + 4) of them, which would cap the posts in flight
            # (and the store's group commit, which merges them) on a small
            # machine.
            self._executor = concurrent.futures.ThreadPoolExecutor(self.max_connections, "vellum-audit-http")
        self._task = loop.create_task(self._run(), name="vellum-audit-sender")
        self._task.add_done_callback(_sender_ended)

    async def _put(self, e: _Entry) -> _Entry:
        self._stats["steps"] += 1
        if self.policy == FAIL_CLOSED:
            e.future = self._loop.create_future()
            e.deadline = time.monotonic() + self.durable_timeout
            while self._queued >= self.max_pending:
                left = e.deadline - time.monotonic()
                if left <= 0:
                    self._stats["timeouts"] += 1
                    raise AuditUnavailable("audit queue full for %.3gs (%d steps waiting; last error: %s)"
                                           % (self.durable_timeout, self._queued, self._last_error or "none"))
                self._room.clear()
                try:
                    await asyncio.wait_for(self._room.wait(), left)
                except asyncio.TimeoutError:
                    pass
            self._enqueue(e)
        elif self._spill is not None and (self._spill.pending() or self._queued >= self.max_pending):
            # Once anything is spilled, later steps follow it there: order
            # holds (the memory's steps, older, go first).
            if not self._spill_append(e):
                self._drop(1, "spill file full")
        elif self._queued >= self.max_pending:
            self._drop(1, "queue full")
        else:
            self._enqueue(e)
        self._wake.set()
        return e

    def _enqueue(self, e: _Entry):
        lane = self._lanes.get(e.lane)
        if lane is None:
            lane = self._lanes[e.lane] = collections.deque()
        lane.append(e)
        self._queued += 1

    def _spill_append(self, e: _Entry) -> bool:
        if self._spill.append(e.to_line()):
            self._stats["spilled"] += 1
            return True
        return False

    def _drop(self, n: int, why: str):
        self._stats["dropped"] += n
        self._unreported += n
        now = time.monotonic()
        # Every drop is counted; the log says so at most once a second with
        # the running total, so an outage cannot flood it.
        if now - self._last_drop_log >= 1.0:
            self._last_drop_log = now
            log.error("vellum_audit: audit steps DROPPED (%s): %d in total; Vellum is %s",
                      why, self._stats["dropped"], "reachable" if self._healthy else "unreachable")

    def _count_rejected(self, n: int, detail: str):
        self._stats["rejected"] += n
        log.error("vellum_audit: Vellum rejected %d step(s): %s", n, detail)

    async def _await_durable(self, e: _Entry):
        left = e.deadline - time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(e.future), max(left, 0))
        except asyncio.TimeoutError:
            self._stats["timeouts"] += 1
            # Not released to the client: the sender stops trying to store
            # it and the steps of its session before it.
            e.abandoned = True
            raise AuditUnavailable("audit record not durable within %.3gs (last error: %s)"
                                   % (self.durable_timeout, self._last_error or "none")) from None

    # ------------------------------------------------------------ the sender

    async def _run(self):
        backoff = self.retry_initial
        while True:
            self._wake.clear()
            if self._failed is None:
                self._launch()
            if self._posts:
                await self._wake.wait()  # a post ended, or a step arrived
                continue
            if self._failed is not None:
                # Every post of the round has ended: now the lanes hold all
                # unsent steps, in order, and the spill may take them.
                err, self._failed = self._failed, None
                self._outage(err)
                if self.policy == FAIL_OPEN and self._spill is not None and not self._spill.pending():
                    # What waits in memory moves to the spill file (in
                    # order) so it survives a restart of this process. Not
                    # when the spill holds steps already: they are newer
                    # than the memory's, which must go first.
                    self._move_to_spill()
                if self._spill is not None:
                    self._spill.sync()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.retry_max)
                continue
            if self._queued:
                await asyncio.sleep(0)  # lanes with steps: launched on the next turn
                continue
            if self._spill is not None and self._spill.pending():
                if await self._send_spilled():
                    backoff = self.retry_initial
                    continue
                if self._spill is not None:
                    self._spill.sync()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.retry_max)
                continue
            backoff = self.retry_initial
            if self._unreported and self._healthy:
                await self._report_dropped()
            if not self._queued and not self._wake.is_set():
                await self._wake.wait()

    def _launch(self):
        """Start a post for every lane with steps and none in flight, as
        connection slots allow, longest-waiting lanes first."""
        for key in list(self._lanes):
            if len(self._posts) >= self.max_connections:
                return
            if key in self._posting:
                continue
            lane = self._lanes[key]
            if self.policy == FAIL_CLOSED:
                self._forget_abandoned(lane)
            if not lane:
                del self._lanes[key]
                continue
            # The steps at the front of one context (a batch has one).
            n, k0 = 0, lane[0].key
            for e in lane:
                if n == self.batch_size or e.key != k0:
                    break
                n += 1
            group = [lane.popleft() for _ in range(n)]
            self._queued -= n
            self._room.set()
            if lane:
                self._lanes.move_to_end(key)
            else:
                del self._lanes[key]
            self._posting[key] = group
            t = self._loop.create_task(self._post_lane(key, group))
            self._posts.add(t)

    async def _post_lane(self, key, group):
        try:
            err = await self._send_group(group)
        except asyncio.CancelledError:
            err = None
            raise
        finally:
            self._posts.discard(asyncio.current_task())
            del self._posting[key]
            left = [e for e in group if not e.settled]
            if left:
                # Back to the front of its lane, for the next round.
                lane = self._lanes.get(key)
                if lane is None:
                    lane = self._lanes[key] = collections.deque()
                    self._lanes.move_to_end(key, last=False)
                lane.extendleft(reversed(left))
                self._queued += len(left)
            self._wake.set()
        if err is not None and self._failed is None:
            self._failed = err

    def _outage(self, err):
        self._stats["failures"] += 1
        if self._healthy:
            log.warning("vellum_audit: posting to Vellum failed, will retry: %s", err)
        self._healthy = False
        self._last_error = str(err)

    async def _send_spilled(self) -> bool:
        """Post the next run of one context from the spill; True when it
        was delivered (or refused for good)."""
        group, off = self._spill.read(self.batch_size)
        if not group:  # only unreadable or torn lines left
            self._spill.commit(self._spill.size, 0)
            return True
        err = await self._send_group(group)
        if err is not None:
            self._outage(err)
            return False
        self._spill.commit(off, len(group))
        return True

    def _move_to_spill(self):
        lanes, self._lanes, self._queued = self._lanes, collections.OrderedDict(), 0
        for lane in lanes.values():
            for e in lane:
                if not self._spill_append(e):
                    self._drop(1, "spill file full")
        self._room.set()

    async def _send_group(self, group):
        """Post one context's steps; the retryable error, or None when they
        are stored or refused for good (settled)."""
        try:
            try:
                res = await self._post(group)
            except _PostError as err:
                if err.kind == "retry":
                    raise
                await self._refused(group, err)
                return None
        except _PostError as err:
            return err
        except Exception as err:  # a bug: never kill the sender
            log.exception("vellum_audit: cannot post a batch")
            await self._refused(group, _PostError("reject", "%s: %s" % (type(err).__name__, err)), split=False)
            return None
        if not self._healthy:
            log.info("vellum_audit: Vellum reachable again")
        self._healthy = True
        self._done(group, res)
        return None

    async def _report_dropped(self):
        """Record in Vellum that steps were dropped (as the Go collector
        does): one audit.dropped event, sent once Vellum takes steps again
        and everything before it was delivered. Idempotent: its event_id
        is fixed until it is acknowledged."""
        n = self._unreported
        if self._report_id is None:
            self._report_id = "py-dropped-%d" % time.time_ns()
        ev = {"event_id": self._report_id, "time": rfc3339_ns(time.time_ns()), "action": "audit.dropped",
              "service": "vellum_audit.py",
              "outcome": {"status": "failure",
                          "reason": "%d audit steps were dropped: Vellum was unreachable and the queue and spill were full" % n},
              "attributes": {"dropped": str(n)}}
        if self.report_tenant:
            ev["tenant_id"] = self.report_tenant
        body = json.dumps([ev]).encode()
        headers = {"Authorization": "Bearer " + self._token, "Content-Type": "application/json"}
        try:
            status, data = await self._request(body, headers, EVENTS_PATH)
        except _PostError as e:
            status, data = 0, str(e).encode()
        if status != 200:
            log.error("vellum_audit: cannot record the %d dropped steps in Vellum (will try again): %s",
                      n, _detail(data) or status)
            return
        self._unreported -= n
        self._stats["reported"] += n
        self._report_id = None
        log.warning("vellum_audit: %d dropped audit steps recorded in Vellum as audit.dropped", n)

    def _forget_abandoned(self, lane):
        """Drop the steps of a lane up to the last one its caller gave up on
        (fail_closed): they were never released, and retrying them would
        only delay the steps behind them."""
        last = -1
        for i, e in enumerate(lane):
            if e.abandoned:
                last = i
        for _ in range(last + 1):
            e = lane.popleft()
            self._queued -= 1
            if e.future is not None and not e.future.done():
                _fail(e.future, AuditUnavailable("not durable in time"))

    def _done(self, group, res):
        for e in group:
            e.settled = True
        self._stats["sent"] += len(group)
        self._stats["records"] += int(res.get("records", 0)) if isinstance(res, dict) else 0
        for e in group:
            if e.future is not None and not e.future.done():
                e.future.set_result(None)

    async def _refused(self, group, err, split=True):
        """A 4xx that retrying cannot cure. fail_open keeps what it can: a
        batch is split until the refused steps stand alone. A retryable
        error on the way raises _PostError("retry")."""
        if split and len(group) > 1 and (err.kind == "too_large" or self.policy == FAIL_OPEN):
            half = len(group) // 2
            for part in (group[:half], group[half:]):
                try:
                    res = await self._post(part)
                except _PostError as e2:
                    if e2.kind == "retry":
                        raise
                    await self._refused(part, e2)
                    continue
                self._done(part, res)
            return
        for e in group:
            e.settled = True
        msg = str(err) + _which(group, str(err))
        self._count_rejected(len(group), msg)
        self._last_error = msg
        for e in group:
            if e.future is not None and not e.future.done():
                _fail(e.future, AuditRejected(msg))

    def _set_next(self, lane, n: int):
        self._next_step[lane] = n
        self._next_step.move_to_end(lane)
        while len(self._next_step) > MAX_SESSIONS:
            self._next_step.popitem(last=False)

    async def _post(self, group) -> dict:
        lane = group[0].lane
        steps = b",".join(e.step for e in group)
        for attempt in (0, 1):
            # first_step: where the batch starts in the session. Unchanged
            # until Vellum answers, so a resend of a batch whose answer was
            # lost starts where it did and Vellum skips what it stored.
            first = self._next_step.get(lane, 0)
            ctx = dict(group[0].context, first_step=first)
            body = b'{"context":%s,"steps":[%s]}' % (_encode(ctx), steps)
            headers = {"Authorization": "Bearer " + self._token, "Content-Type": "application/json",
                       "Accept": "application/json"}
            if self.gzip_min_bytes is not None and len(body) >= self.gzip_min_bytes:
                body = gzip.compress(body, 6)
                headers["Content-Encoding"] = "gzip"
            ident = group[0].ident
            if ident.get("tenant"):
                headers["X-Tenant"] = ident["tenant"]
            if ident.get("user"):
                headers["X-Auth-Subject"] = ident["user"]
            self._stats["posts"] += 1
            status, data = await self._request(body, headers, STEPS_PATH)
            if status == 200:
                try:
                    res = json.loads(data or b"{}")
                except ValueError:
                    res = {}
                nxt = res.get("next_step") if isinstance(res, dict) else None
                self._set_next(lane, nxt if isinstance(nxt, int) else first + len(group))
                return res
            m = _FIRST_STEP.search(_detail(data)) if status == 409 else None
            if m is None or attempt == 1:
                break
            # Vellum holds this session at another step than this process
            # counted (this process restarted, or forgot the session):
            # go on from Vellum's count.
            log.warning("vellum_audit: session %s: Vellum expects step %s, this process counted %d; going on from %s",
                        group[0].context.get("session_id"), m.group(1), first, m.group(1))
            self._set_next(lane, int(m.group(1)))
        detail = _detail(data)
        msg = "POST %s: %d %s" % (STEPS_PATH, status, detail)
        if status == 413:
            raise _PostError("too_large", msg)
        if 400 <= status < 500 and status not in (401, 403, 408, 429):
            raise _PostError("reject", msg)
        raise _PostError("retry", msg)

    async def _request(self, body: bytes, headers: dict, path: str):
        """POST on a pooled kept-alive connection, in a worker thread."""
        async with self._conn_slots:
            conn = self._idle.pop() if self._idle else None
            status, data, conn = await self._loop.run_in_executor(self._executor, self._roundtrip, conn, body, headers, path)
            if conn is not None:
                self._idle.append(conn)
            return status, data

    def _roundtrip(self, conn, body: bytes, headers: dict, path: str):
        """One POST (runs in a worker thread): status, body and the
        connection to keep (None when it closed)."""
        target = self._url.path.rstrip("/") + path
        for attempt in (0, 1):
            if conn is None:
                cls = http.client.HTTPSConnection if self._url.scheme == "https" else http.client.HTTPConnection
                conn = cls(self._url.hostname, self._url.port, timeout=self.request_timeout)
            try:
                conn.request("POST", target, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    conn.close()
                    conn = None
                return resp.status, data, conn
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # A kept-alive connection the server closed: one fresh try.
                # (Were the request stored, Vellum skips its steps by
                # first_step; the server closes idle connections only
                # between requests.)
                conn.close()
                conn = None
                if attempt == 1:
                    raise _PostError("retry", "POST %s: %s" % (path, type(e).__name__)) from None
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise _PostError("retry", "POST %s: %s: %s" % (path, type(e).__name__, e)) from None
        raise AssertionError("unreachable")


def _which(group, detail: str) -> str:
    """Name the refused step by its place in its stream: Vellum's error
    counts from the start of the posted batch (steps[3].type)."""
    m = re.search(r"\bsteps\[(\d+)\]", detail)
    if m and int(m.group(1)) < len(group) and group[int(m.group(1))].n:
        e = group[int(m.group(1))]
        return " (stream step %d, %s, session %s)" % (e.n, e.type, e.context.get("session_id"))
    return ""


def _sender_ended(task):
    """Say so if the sender stopped on anything but aclose: steps would
    pile up unsent (flush() then returns False)."""
    if not task.cancelled() and task.exception() is not None:
        log.critical("vellum_audit: the sender stopped: %r; no more steps reach Vellum", task.exception())


def _fail(fut, exc):
    """Fail a waiter's future; marked retrieved, since its waiter may have
    given up already (asyncio would warn about it otherwise)."""
    fut.set_exception(exc)
    fut.exception()


def _detail(data: bytes) -> str:
    try:
        d = json.loads(data)
        return str(d.get("detail") or d.get("title") or "")[:500]
    except (ValueError, AttributeError):
        return data[:200].decode("utf-8", "replace")

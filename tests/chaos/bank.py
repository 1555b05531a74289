#!/usr/bin/python3
"""Bank chaos test: random payments at a fixed rate while processes and
services are killed, paused and restarted; then every money invariant.

A private deployment (its own RabbitMQ vhost and databases, see
tests/integration/harness.py) with two ledger shards and N coordinators
gets accounts in two currencies on both shards, external ones among them
(allowed to go negative). Payments are published open-loop at --rate per
second for --duration seconds: transfers, deposits, withdrawals, multi-leg
and two-currency payments, some that must abort (insufficient funds,
unknown account), some resubmitted with the same payment_id and the same
content (must move money once) and some with the same payment_id and
different content (must be rejected as payment_id_conflict).

Meanwhile a fault schedule drawn from random.Random(seed) is played:
kill -9 of a coordinator or a ledger (restarted after a short delay),
SIGSTOP/SIGCONT of either, a RabbitMQ restart, a PostgreSQL immediate
restart (scripts/services.sh restart-rabbit / restart-pg), and Redis
killed -9 (then started again, empty) or flushed (FLUSHALL).

The balance cache (paytx-cache, docs/cache.md) takes part in every payment,
and a reader thread reads balances all along, through the paytx.balance
query and paytxctl balance. At the end every read is checked against the
outcomes: it must include every payment whose committed outcome event had
arrived before the read began, and otherwise only committed payments
submitted before it ended (never an aborted one): the read's balance must
be the sum of those certain payments plus some subset of the uncertain
ones. The same seed,
--duration, --coordinators, --faults and --fault-every replay the same
schedule and the same sequence of payments (only the system's own timing
differs); the output starts with the seed and the command that replays it.

Then everything is healed, the test waits for quiescence and checks:
per currency the balances sum to zero, no non-external account is
negative, no hold is open, balances agree with the journal (the harness's
invariants); every payment's outcome agrees between the coordinator log,
the decisions table, every ledger journal and barrier, and the outcome
events; every submitted payment got exactly one final status; no
payment_id moved money twice; balances equal what the committed payments
(as this client submitted them) add up to; nothing but the conflicts was
dead-lettered; every process consumes from RabbitMQ again.

Outcomes are counted from a durable queue of our own bound to paytx.events
(events are at-least-once: one status twice is fine, two statuses is not).

Exit status: 0 no violation, 1 violations (or a setup failure), 77 no
services configured (PAYTX_TEST_AMQP_URL, PAYTX_TEST_PG_DSN,
PAYTX_TEST_RABBITMQCTL; see tests/chaos/README.md).
"""
import argparse
import collections
import copy
import heapq
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SERVICES = os.path.join(REPO, "scripts", "services.sh")

FAULT_KINDS = ["kill-coordinator", "kill-ledger", "pause", "restart-rabbit", "restart-pg",
               "kill-redis", "flush-redis"]
EXTRA_KINDS = ["kill-rabbit"]       # only when asked for with --faults
ALL_KINDS = FAULT_KINDS + EXTRA_KINDS
RABBIT_KINDS = ("restart-rabbit", "kill-rabbit")
OPEN_STATES = ("preparing", "committing", "aborting")
FAULT_REASONS = ("timeout", "coordinator_recovery")   # aborts any payment may get
EVENTS_QUEUE = "chaos.bank.events"
CURRENCIES = ("EUR", "USD")
FUND_AMOUNT = 50000
HUGE = 10 ** 12          # more than the whole bank ever holds
LEVEL_RE = re.compile(rb'"level":"(\w+)"')


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="paytx bank chaos test: random payments under injected faults, then "
                    "money invariants. Needs the services of scripts/services.sh and the "
                    "PAYTX_TEST_* variables (see tests/chaos/README.md); restarts RabbitMQ "
                    "and PostgreSQL, so never point it at services others are using.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--seed", type=int, default=None,
                    help="seed of the fault schedule and the payments (default: random, "
                         "printed)")
    ap.add_argument("--duration", type=float, default=120.0,
                    help="seconds of load (and faults)")
    ap.add_argument("--rate", type=float, default=20.0, help="payments submitted per second")
    ap.add_argument("--coordinators", type=int, default=2, help="coordinator processes")
    ap.add_argument("--accounts", type=int, default=6,
                    help="internal accounts per shard and currency")
    ap.add_argument("--faults", default=",".join(FAULT_KINDS),
                    help="comma-separated fault kinds to inject (each at least once), or "
                         "'none'; also known: %s (kill -9 of RabbitMQ, then a start)"
                         % ", ".join(EXTRA_KINDS))
    ap.add_argument("--fault-every", type=float, default=8.0,
                    help="mean seconds between faults")
    ap.add_argument("--quiesce-timeout", type=float, default=120.0,
                    help="seconds to wait for quiescence after the load")
    ap.add_argument("--log-level", default="debug", help="PAYTX_LOG_LEVEL of the processes")
    ap.add_argument("--keep", action="store_true",
                    help="keep the vhost and databases at the end (for inspection)")
    args = ap.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 10 ** 6)
    if args.duration < 10 or args.rate <= 0 or args.coordinators < 1 or args.accounts < 2:
        ap.error("need --duration >= 10, --rate > 0, --coordinators >= 1, --accounts >= 2")
    kinds = [] if args.faults == "none" else [k.strip() for k in args.faults.split(",") if k]
    bad = [k for k in kinds if k not in ALL_KINDS]
    if bad:
        ap.error("unknown fault kind(s) %s; known: %s" % (", ".join(bad), ", ".join(ALL_KINDS)))
    args.fault_kinds = kinds
    return args


# --- the fault schedule -----------------------------------------------------

def fault_schedule(seed, duration, ncoord, kinds, every):
    """[(t, kind, target, param)] from random.Random(seed): each kind at least
    once, the rest drawn at random; at most one fault per time slot, all
    within [4, duration - 8] s so the load runs on while they heal."""
    rng = random.Random(seed)
    if not kinds:
        return []
    lo, hi = 4.0, max(5.0, duration - 8.0)
    n = max(len(kinds), int(round((hi - lo) / every)))
    nrabbit = sum(1 for k in kinds if k in RABBIT_KINDS)
    max_rabbit = max(nrabbit, int(duration // 60)) if nrabbit else 0
    slot = (hi - lo) / n
    for _ in range(1000):
        picks = list(kinds)
        others = [k for k in kinds if k not in RABBIT_KINDS]
        while len(picks) < n:
            nr = sum(1 for k in picks if k in RABBIT_KINDS)
            choices = kinds if nr < max_rabbit else others
            if not choices:
                break
            picks.append(rng.choice(choices))
        rng.shuffle(picks)
        # A RabbitMQ restart takes ~20 s: keep them 40 s apart.
        rt = [i * slot for i, k in enumerate(picks) if k in RABBIT_KINDS]
        if all(b - a >= 40 for a, b in zip(rt, rt[1:])):
            break
    n = len(picks)
    slot = (hi - lo) / n
    coords = ["coordinator-%d" % i for i in range(ncoord)]
    ledgers = ["ledger.0", "ledger.1"]
    out = []
    busy = {}   # process -> until when an earlier fault keeps it down or paused

    def target(pool, t):
        free = [x for x in pool if busy.get(x, 0) < t]
        return rng.choice(free or pool)

    for i, kind in enumerate(picks):
        t = round(lo + i * slot + rng.uniform(0, slot * 0.5), 1)
        if kind == "kill-coordinator":
            # Sometimes longer than the 3 s lease, so another coordinator adopts.
            who, param = target(coords, t), round(rng.uniform(0.5, 6.0), 1)
        elif kind == "kill-ledger":
            who, param = target(ledgers, t), round(rng.uniform(0.5, 4.0), 1)
        elif kind == "pause":
            who, param = target(coords + ledgers, t), round(rng.uniform(1.0, 4.0), 1)
        elif kind == "kill-redis":
            who, param = None, round(rng.uniform(1.0, 5.0), 1)
        else:
            who = param = None
        if who:
            busy[who] = t + param + (2 if kind.startswith("kill") else 0)
        out.append((t, kind, who, param))
    return out


def describe_fault(f):
    t, kind, target, param = f
    what = {
        "kill-coordinator": "kill -9 %s, restart after %ss" % (target, param),
        "kill-ledger": "kill -9 %s, restart after %ss" % (target, param),
        "pause": "SIGSTOP %s for %ss, then SIGCONT" % (target, param),
        "restart-rabbit": "RabbitMQ restart (scripts/services.sh restart-rabbit)",
        "restart-pg": "PostgreSQL immediate restart (scripts/services.sh restart-pg)",
        "kill-rabbit": "kill -9 RabbitMQ, then start it (scripts/services.sh kill-rabbit, "
                       "start)",
        "kill-redis": "kill -9 Redis, start it (empty) after %ss" % param,
        "flush-redis": "Redis FLUSHALL",
    }[kind]
    return "t=%6.1fs  %s" % (t, what)


# --- everything below needs the services --------------------------------------

def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
    import harness   # exits 1 without pika / psycopg2
    harness.require_services()   # exits 77 without services
    return Chaos(args, harness).run()


class Out:
    """Timestamped, flushed output."""
    t0 = time.monotonic()

    @classmethod
    def say(cls, fmt, *a):
        msg = fmt % a if a else fmt
        print("[%7.1fs] %s" % (time.monotonic() - cls.t0, msg), flush=True)


say = Out.say


def legs_of(body):
    """Legs of a submit message as [(account, amount, currency)]."""
    if "legs" in body:
        return [(l["account"], int(l["amount"]), l["currency"]) for l in body["legs"]]
    return [(body["from"], -int(body["amount"]), body["currency"]),
            (body["to"], int(body["amount"]), body["currency"])]


def net_per_account(legs):
    net = collections.defaultdict(int)
    for acc, amount, _ in legs:
        net[acc] += amount
    return dict(net)


class Payment:
    __slots__ = ("pid", "kind", "body", "raw", "legs", "expect", "dups", "conflict",
                 "conflict_body", "conflict_sent", "fund")

    def __init__(self, pid, kind, body, expect=None, fund=False):
        self.pid = pid
        self.kind = kind
        self.body = body
        self.raw = json.dumps(body, separators=(",", ":")).encode()
        self.legs = legs_of(body)
        self.expect = expect        # None, or the reasons its (certain) abort may have
        self.dups = 0               # same-content resubmissions planned
        self.conflict = False       # a different-content resubmission planned
        self.conflict_body = None
        self.conflict_sent = False
        self.fund = fund


# --- AMQP clients (one connection per thread: pika is not thread-safe) --------

def amqp_params(url):
    p = __import__("pika").URLParameters(url)
    p.heartbeat = 15
    p.blocked_connection_timeout = 30
    p.socket_timeout = 5
    p.connection_attempts = 1
    return p


class Publisher(threading.Thread):
    """Publishes submits from a backlog, persistent, with publisher confirms.
    A publish that is not confirmed (the broker went away) stays in the
    backlog and is published again, same body, after a reconnect."""

    def __init__(self, url):
        super().__init__(name="publisher", daemon=True)
        import pika
        self.pika = pika
        self.url = url
        self.backlog = collections.deque()
        self.cv = threading.Condition()
        self.stopping = False
        self.confirmed = 0
        self.republished = 0
        self.reconnects = 0
        self.busy = False
        self.conn = self.ch = None

    def put(self, pid, raw):
        with self.cv:
            self.backlog.append((pid, raw, False))
            self.cv.notify()

    def pending(self):
        with self.cv:
            return len(self.backlog) + (1 if self.busy else 0)

    def stop(self):
        with self.cv:
            self.stopping = True
            self.cv.notify()
        self.join(30)

    def _connect(self):
        self.conn = self.pika.BlockingConnection(amqp_params(self.url))
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()

    def _drop(self):
        try:
            if self.conn and self.conn.is_open:
                self.conn.close()
        except Exception:
            pass
        self.conn = self.ch = None

    def run(self):
        backoff, failures = 0.2, 0
        while True:
            with self.cv:
                if self.stopping:
                    break
                item = self.backlog.popleft() if self.backlog else None
                self.busy = item is not None
            try:
                if self.conn is None:
                    self._connect()
                    if failures:
                        say("publisher: reconnected after %d attempt(s)", failures)
                    failures = 0
                    backoff = 0.2
                if item is None:
                    self.conn.process_data_events(time_limit=0.05)
                    continue
                pid, raw, again = item
                props = self.pika.BasicProperties(
                    content_type="application/json", delivery_mode=2, type="payment.submit",
                    message_id=uuid.uuid4().hex, timestamp=int(time.time()))
                # the client's user may write to the submit exchange only
                self.ch.basic_publish("paytx.submit", "paytx.submit", raw, props,
                                      mandatory=True)
                self.confirmed += 1
                if again:
                    self.republished += 1
                with self.cv:
                    self.busy = False
            except Exception as e:   # connection lost, nack, unroutable: retry it
                with self.cv:
                    if item is not None:
                        self.backlog.appendleft((item[0], item[1], True))
                    self.busy = False
                if self.conn is not None:
                    self.reconnects += 1
                    say("publisher: %s: %s; reconnecting", type(e).__name__, e)
                failures += 1
                self._drop()
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        self._drop()


class Consumer(threading.Thread):
    """Consumes outcome events from our durable queue, reconnecting as
    needed; calls on_event(routing_key, outcome) for each."""

    def __init__(self, url, on_event):
        super().__init__(name="consumer", daemon=True)
        import pika
        self.pika = pika
        self.url = url
        self.on_event = on_event
        self.stopping = False
        self.received = 0
        self.reconnects = 0

    def stop(self):
        self.stopping = True
        self.join(30)

    def run(self):
        backoff, failures = 0.2, 0
        while not self.stopping:
            conn = None
            try:
                conn = self.pika.BlockingConnection(amqp_params(self.url))
                ch = conn.channel()
                ch.basic_qos(prefetch_count=500)
                if failures:
                    say("consumer: reconnected after %d attempt(s)", failures)
                failures = 0
                backoff = 0.2
                for method, props, body in ch.consume(EVENTS_QUEUE, inactivity_timeout=0.2):
                    if self.stopping:
                        break
                    if method is None:
                        continue
                    self.received += 1
                    self.on_event(method.routing_key, body)
                    ch.basic_ack(method.delivery_tag)
                try:
                    ch.cancel()
                except Exception:
                    pass
            except Exception as e:
                self.reconnects += 1
                if not failures:
                    say("consumer: %s: %s; reconnecting", type(e).__name__, e)
                failures += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                try:
                    if conn and conn.is_open:
                        conn.close()
                except Exception:
                    pass


class Reader(threading.Thread):
    """Reads balances all along: mostly through the paytx.balance query (as
    the client user, over a connection of its own), every fourth one with
    paytxctl balance. Each answered read is kept as (account, started,
    ended, balance, source, via) for check_reads; a read that fails (a
    service is down) is only counted."""

    def __init__(self, d, accounts):
        super().__init__(name="reader", daemon=True)
        import pika
        self.pika = pika
        self.d = d
        self.accounts = accounts
        self.rng = random.Random(1)
        self.stopping = False
        self.reads = []
        self.failed = 0
        self.by_via = collections.Counter()
        self.by_source = collections.Counter()
        self.conn = self.ch = self.queue = None

    def stop(self):
        self.stopping = True
        self.join(60)

    def _drop(self):
        try:
            if self.conn and self.conn.is_open:
                self.conn.close()
        except Exception:
            pass
        self.conn = self.ch = None

    def _query(self, account):
        if self.conn is None:
            self.conn = self.pika.BlockingConnection(amqp_params(self.d.amqp_url))
            self.ch = self.conn.channel()
            self.queue = self.ch.queue_declare("", exclusive=True).method.queue
        corr = uuid.uuid4().hex
        self.ch.basic_publish("paytx.balance", "", json.dumps({"account": account}).encode(),
                              self.pika.BasicProperties(reply_to=self.queue,
                                                        correlation_id=corr))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            method, props, body = self.ch.basic_get(self.queue, auto_ack=True)
            if method is None:
                self.conn.sleep(0.005)
            elif props.correlation_id == corr:
                return json.loads(body)
        raise TimeoutError("no balance reply in 5 s")

    def _ctl(self, account):
        r = subprocess.run([os.path.join(self.d_build(), "paytxctl"), "balance", account,
                            "--json"], env=self.d.env(), capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise RuntimeError("paytxctl balance exited %d" % r.returncode)
        return json.loads(r.stdout)

    @staticmethod
    def d_build():
        return os.environ.get("PAYTX_BUILD_DIR", "build")

    def run(self):
        n = 0
        while not self.stopping:
            account = self.rng.choice(self.accounts)
            via = "paytxctl" if n % 4 == 3 else "query"
            n += 1
            started = time.monotonic()
            try:
                out = self._ctl(account) if via == "paytxctl" else self._query(account)
            except Exception:
                self.failed += 1
                if via == "query":
                    self._drop()
                time.sleep(0.2)
                continue
            ended = time.monotonic()
            if "balance" not in out:
                self.failed += 1   # e.g. database_error while PostgreSQL restarts
                continue
            self.reads.append((account, started, ended, out["balance"], out["source"], via))
            self.by_via[via] += 1
            self.by_source[out["source"]] += 1
            time.sleep(0.01)
        self._drop()


# --- the test -------------------------------------------------------------------

class Violations:
    """Collects violations; also stands in for unittest.TestCase in the
    harness's check_invariants."""

    def __init__(self):
        self.items = []

    def add(self, fmt, *a):
        msg = fmt % a if a else fmt
        self.items.append(msg)
        if len(self.items) <= 200:
            say("VIOLATION: %s", msg)

    def assertEqual(self, first, second, msg=None):   # noqa: N802 (unittest's name)
        if first != second:
            self.add("%s: %r (expected %r)", msg or "values differ", first, second)

    def __len__(self):
        return len(self.items)


class Chaos:
    def __init__(self, args, harness):
        self.args = args
        self.h = harness
        self.v = Violations()
        self.lock = threading.Lock()
        self.payments = {}                 # pid -> Payment
        self.order = []                    # pids in submission order
        self.events = collections.defaultdict(list)   # pid -> [(status, reason, txn)]
        self.stray_events = []
        self.resubmits = []                # heap of (due, seq, pid)
        self.resub_seq = 0
        self.resubmitted_same = 0
        self.resubmitted_conflict = 0
        self.load_done = threading.Event()
        self.faults_done = collections.Counter()
        self.fault_notes = []
        self.down = set()                  # processes we killed, awaiting restart
        self.paused = set()
        self.bg = []                       # (kind, Popen, started) service restarts running
        self.submitted_at = {}             # pid -> when it was first submitted (monotonic)
        self.committed_at = {}             # pid -> when its committed event arrived

    # ---- setup ------------------------------------------------------------
    def services_env(self):
        """The environment for scripts/services.sh: ours, plus the ports the
        test services are on when the caller did not export them."""
        env = dict(os.environ)
        amqp = urllib.parse.urlsplit(self.h.AMQP_URL)
        pg = urllib.parse.urlsplit(self.h.PG_DSN)
        if amqp.port:
            env.setdefault("PAYTX_AMQP_PORT", str(amqp.port))
        if pg.port:
            env.setdefault("PAYTX_PG_PORT", str(pg.port))
        redis = urllib.parse.urlsplit(self.h.REDIS_URL or "")
        if redis.port:
            env.setdefault("PAYTX_REDIS_PORT", str(redis.port))
        return env

    def check_services_match(self):
        """Refuse to run when scripts/services.sh (with this environment)
        does not manage the services the test talks to: restarting the
        wrong ones would both disturb someone else and test nothing."""
        env = self.services_env()
        r = subprocess.run([SERVICES, "env"], env=env, capture_output=True, text=True,
                           timeout=30)
        got = {}
        for line in r.stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                k, v = line[7:].split("=", 1)
                got[k] = v.strip("'")

        def hostport(u):
            p = urllib.parse.urlsplit(u)
            return (p.hostname, p.port)

        if (hostport(got.get("PAYTX_TEST_AMQP_URL", "")) != hostport(self.h.AMQP_URL) or
                hostport(got.get("PAYTX_TEST_PG_DSN", "")) != hostport(self.h.PG_DSN) or
                hostport(got.get("PAYTX_TEST_REDIS_URL", "")) != hostport(self.h.REDIS_URL or "")):
            print("scripts/services.sh manages %s and %s with this environment, but the test "
                  "services are %s and %s (Redis %s): export PAYTX_HOME, PAYTX_PG_PORT, "
                  "PAYTX_AMQP_PORT, PAYTX_EPMD_PORT and PAYTX_REDIS_PORT as when they were "
                  "started"
                  % (got.get("PAYTX_TEST_AMQP_URL"), got.get("PAYTX_TEST_PG_DSN"),
                     self.h.AMQP_URL, self.h.PG_DSN, self.h.REDIS_URL), file=sys.stderr)
            return False
        r = subprocess.run([SERVICES, "status"], env=env, capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            print("scripts/services.sh status: services not running:\n" + r.stdout + r.stderr,
                  file=sys.stderr)
            return False
        return True

    def setup(self):
        h = self.h
        self.d = d = h.Deployment("bank")
        d.ctl("migrate")
        # paytx-cache declares paytx.balance; the harness declares it first
        # (and the cache's queue) on its administrator connection.
        self.start_proc("cache")
        # The harness's own connections would die with the first RabbitMQ
        # restart; we use connections of our own.
        for c in (d.conn, d.admin_conn):
            try:
                c.close()
            except Exception:
                pass
        import pika
        # Our durable events queue is no client's to declare: the
        # administrator declares and reads it (and paytx.dead).
        conn = pika.BlockingConnection(amqp_params(d.admin_url))
        ch = conn.channel()
        ch.queue_declare(EVENTS_QUEUE, durable=True)
        ch.queue_bind(EVENTS_QUEUE, "paytx.events", "payment.#")
        conn.close()
        say("deployment %s: vhost %s, databases %s", d.name, d.vhost,
            ", ".join(sorted(d.dbs.values())))
        say("process logs: %s", os.path.abspath(d.logdir))
        self.internal = {c: [] for c in CURRENCIES}
        self.external = {c: [] for c in CURRENCIES}
        for shard in d.shards:
            for cur in CURRENCIES:
                for acc in h.accounts_on(shard, "bank-%s" % cur.lower(), self.args.accounts,
                                         d.shards):
                    d.account(acc, cur)
                    self.internal[cur].append(acc)
                ext = h.accounts_on(shard, "world-%s" % cur.lower(), 1, d.shards)[0]
                d.account(ext, cur, external=True)
                self.external[cur].append(ext)
        for s in d.shards:
            self.start_proc(s)
        self.coords = ["coordinator-%d" % i for i in range(self.args.coordinators)]
        for c in self.coords:
            self.start_proc(c)
        say("started %s", ", ".join(list(d.shards) + self.coords + ["cache"]))

    def start_proc(self, name):
        d = self.d
        path = os.path.join(d.logdir, name + ".log")
        with open(path, "ab") as f:
            f.write(("--- chaos: starting %s at +%.1fs\n" %
                     (name, time.monotonic() - Out.t0)).encode())
        extra = {"PAYTX_LOG_LEVEL": self.args.log_level}
        if name.startswith("ledger."):
            d.start_ledger(name, PAYTX_STATUS_AFTER_MS=2000, **extra)
        elif name == "cache":
            d.start_cache(**extra)
        else:
            d.start_coordinator(name, PAYTX_COORDINATOR_ID="%s-%s" % (d.name, name),
                                PAYTX_LEASE_MS=3000, PAYTX_PREPARE_TIMEOUT_MS=3000,
                                PAYTX_PARTICIPANTS="cache", **extra)

    # ---- payments -----------------------------------------------------------
    def submit(self, p):
        with self.lock:
            self.payments[p.pid] = p
            self.order.append(p.pid)
            self.submitted_at[p.pid] = time.monotonic()
        self.pub.put(p.pid, p.raw)

    def make_payment(self, rng, i):
        """The i-th random payment."""
        pid = "s%d-%06d" % (self.args.seed, i)
        cur = rng.choice(CURRENCIES)
        ints, exts = self.internal[cur], self.external[cur]
        kind = rng.choices(["transfer", "deposit", "withdraw", "split", "fx", "overdraft",
                            "unknown"], weights=[45, 12, 8, 10, 7, 9, 9])[0]
        expect = None
        amt = rng.randint(1, 8000)
        if kind == "transfer":
            a, b = rng.sample(ints, 2)
            legs = [(a, -amt), (b, amt)]
        elif kind == "deposit":
            legs = [(rng.choice(exts), -amt * 3), (rng.choice(ints), amt * 3)]
        elif kind == "withdraw":
            legs = [(rng.choice(ints), -amt), (rng.choice(exts), amt)]
        elif kind == "split":
            a, b, c = rng.sample(ints, 3)
            x, y, fee = rng.randint(1, 3000), rng.randint(1, 3000), rng.randint(1, 50)
            legs = [(a, -(x + y + fee)), (b, x), (c, y), (rng.choice(exts), fee)]
        elif kind == "overdraft":
            a, b = rng.sample(ints, 2)
            legs = [(a, -HUGE), (b, HUGE)]
            expect = ("insufficient_funds",)
        elif kind == "unknown":
            ghost = "ghost-%d" % rng.randint(0, 10 ** 6)
            if rng.random() < 0.5:
                # The payer may also be short: whichever shard votes no first
                # gives the reason.
                legs = [(rng.choice(ints), -amt), (ghost, amt)]
                expect = ("unknown_account", "insufficient_funds")
            else:
                legs = [(ghost, -amt), (rng.choice(ints), amt)]
                expect = ("unknown_account",)
        if kind == "fx":
            ea, eb = rng.sample(self.internal["EUR"], 2)
            ua, ub = rng.sample(self.internal["USD"], 2)
            y = rng.randint(1, 8000)
            body = {"payment_id": pid, "legs": [
                {"account": ea, "amount": -amt, "currency": "EUR"},
                {"account": eb, "amount": amt, "currency": "EUR"},
                {"account": ub, "amount": -y, "currency": "USD"},
                {"account": ua, "amount": y, "currency": "USD"}]}
        elif len(legs) == 2 and rng.random() < 0.5:
            (src, neg), (dst, _) = legs
            body = {"payment_id": pid, "from": src, "to": dst, "amount": -neg, "currency": cur}
        else:
            body = {"payment_id": pid,
                    "legs": [{"account": a, "amount": n, "currency": cur} for a, n in legs]}
        if rng.random() < 0.3:
            body["metadata"] = {"order": i, "note": "chaos %s" % kind}
        p = Payment(pid, kind, body, expect)
        r = rng.random()
        if r < 0.08:
            p.dups = 1 if rng.random() < 0.8 else 2
        elif r < 0.12:
            p.conflict = True
            alt = copy.deepcopy(body)
            if rng.random() < 0.5:
                alt["metadata"] = {"conflict": i}
            elif "amount" in alt:
                alt["amount"] += 1
            else:
                alt["legs"][0]["amount"] -= 1
                alt["legs"][1]["amount"] += 1
            p.conflict_body = json.dumps(alt, separators=(",", ":")).encode()
        return p, [round(rng.uniform(0, 4), 2) for _ in range(p.dups)]

    def load(self, rng, t_start):
        """Open loop: payment i goes out at t_start + i / rate, whatever the
        system does; same-content resubmissions go out at their due times."""
        i = 0
        end = t_start + self.args.duration
        while not self.stopping_load:
            now = time.monotonic()
            if now < end:
                due = t_start + i / self.args.rate
                while due <= now:
                    p, delays = self.make_payment(rng, i)
                    self.submit(p)
                    with self.lock:
                        for dl in delays:
                            self.resub_seq += 1
                            heapq.heappush(self.resubmits, (now + dl, self.resub_seq, p.pid))
                    i += 1
                    due = t_start + i / self.args.rate
            elif not self.load_done.is_set():
                self.load_done.set()
            with self.lock:   # (held, so that quiesce never sees it in neither place)
                while self.resubmits and self.resubmits[0][0] <= now:
                    pid = heapq.heappop(self.resubmits)[2]
                    self.resubmitted_same += 1
                    self.pub.put(pid, self.payments[pid].raw)
            time.sleep(0.005)
        self.load_done.set()

    def on_event(self, routing_key, body):
        try:
            o = json.loads(body)
            pid, status = o["payment_id"], o["status"]
        except Exception as e:
            self.v.add("unreadable event %r: %s", body[:200], e)
            return
        if routing_key != "payment." + status:
            self.v.add("event %s with routing key %s for %s", status, routing_key, pid)
        conflict = None
        with self.lock:
            p = self.payments.get(pid)
            if p is None:
                self.stray_events.append((pid, status, o.get("reason")))
                return
            self.events[pid].append((status, o.get("reason", ""), o.get("txn")))
            if status == "committed":
                self.committed_at.setdefault(pid, time.monotonic())
            # A conflicting resubmission goes out only once the original has
            # an outcome (so it is in the log): it must then be refused.
            if (p.conflict and not p.conflict_sent and status in ("committed", "aborted")):
                p.conflict_sent = True
                conflict = p
        if conflict:
            self.resubmitted_conflict += 1
            self.pub.put(conflict.pid, conflict.conflict_body)

    def final_statuses(self, pid):
        return {s for s, _, _ in self.events.get(pid, []) if s != "rejected"}

    def fund(self):
        """Money into every internal account, before any fault."""
        pids = []
        for cur in CURRENCIES:
            for k, acc in enumerate(self.internal[cur]):
                pid = "s%d-fund-%s" % (self.args.seed, acc)
                ext = self.external[cur][k % len(self.external[cur])]
                self.submit(Payment(pid, "fund", {"payment_id": pid, "from": ext, "to": acc,
                                                  "amount": FUND_AMOUNT, "currency": cur},
                                    fund=True))
                pids.append(pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with self.lock:
                left = [p for p in pids if not self.final_statuses(p)]
            if not left:
                break
            time.sleep(0.1)
        with self.lock:
            bad = [(p, self.events.get(p)) for p in pids if self.final_statuses(p) != {"committed"}]
        if bad:
            raise RuntimeError("funding did not commit: %s" % bad[:5])
        say("funded %d accounts with %d each", len(pids), FUND_AMOUNT)

    # ---- faults ------------------------------------------------------------
    def proc_signal(self, name, sig):
        p = self.d.procs.get(name)
        if p is None or p.poll() is not None:
            return False
        os.kill(p.pid, sig)
        return True

    def run_action(self, act, heap):
        """One step of a fault, or of its healing."""
        kind, name, param = act
        now = time.monotonic()
        if kind == "kill":
            if name in self.down or not self.proc_signal(name, signal.SIGKILL):
                self.fault_notes.append("kill -9 %s skipped: not running" % name)
                say("fault: kill -9 %s skipped (not running)", name)
                return
            self.d.procs[name].wait()
            self.d.stop(name)
            self.paused.discard(name)
            self.down.add(name)
            self.faults_done["kill-coordinator" if name.startswith("coord") else
                              "kill-ledger"] += 1
            say("fault: kill -9 %s; restart in %ss", name, param)
            heapq.heappush(heap, (now + param, next(self.seq), ("start", name, None)))
        elif kind == "start":
            self.down.discard(name)
            self.start_proc(name)
            say("heal: restarted %s", name)
        elif kind == "stop":
            if name in self.down or not self.proc_signal(name, signal.SIGSTOP):
                self.fault_notes.append("SIGSTOP %s skipped: not running" % name)
                say("fault: SIGSTOP %s skipped (not running)", name)
                return
            self.paused.add(name)
            self.faults_done["pause"] += 1
            say("fault: SIGSTOP %s for %ss", name, param)
            heapq.heappush(heap, (now + param, next(self.seq), ("cont", name, None)))
        elif kind == "cont":
            if name in self.paused:
                self.paused.discard(name)
                self.proc_signal(name, signal.SIGCONT)
                say("heal: SIGCONT %s", name)
        elif kind == "kill-redis":
            r = subprocess.run([SERVICES, "kill-redis"], env=self.services_env(),
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                self.v.add("scripts/services.sh kill-redis failed: %s", r.stderr[-300:])
                return
            self.faults_done["kill-redis"] += 1
            say("fault: kill -9 Redis; start in %ss", param)
            heapq.heappush(heap, (now + param, next(self.seq), ("start-redis", None, None)))
        elif kind == "flush-redis":
            r = subprocess.run([SERVICES, "redis-cli", "FLUSHALL"], env=self.services_env(),
                               capture_output=True, text=True, timeout=60)
            if r.stdout.strip() != "OK":
                self.fault_notes.append("FLUSHALL skipped: %s" % (r.stdout + r.stderr).strip())
                say("fault: FLUSHALL skipped (%s)", (r.stdout + r.stderr).strip())
                return
            self.faults_done["flush-redis"] += 1
            say("fault: Redis FLUSHALL")
        elif kind == "start-redis":
            r = subprocess.run([SERVICES, "restart-redis"], env=self.services_env(),
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                self.v.add("scripts/services.sh restart-redis failed: %s", r.stderr[-300:])
            else:
                say("heal: Redis started (empty)")
        elif kind in ("restart-rabbit", "restart-pg", "kill-rabbit"):
            group = RABBIT_KINDS if kind in RABBIT_KINDS else (kind,)
            for k, p, _ in self.bg:
                if k in group and p.poll() is None:
                    # Still restarting from the last time: try again shortly.
                    heapq.heappush(heap, (now + 1, next(self.seq), act))
                    return
            argv = {"restart-rabbit": [SERVICES, "restart-rabbit"],
                    "restart-pg": [SERVICES, "restart-pg"],
                    "kill-rabbit": ["/bin/sh", "-c", '"$0" kill-rabbit && "$0" start',
                                    SERVICES]}[kind]
            log = open(os.path.join(self.d.logdir, "services.log"), "ab")
            p = subprocess.Popen(argv, env=self.services_env(), stdout=log,
                                 stderr=subprocess.STDOUT)
            log.close()
            self.bg.append((kind, p, now))
            self.faults_done[kind] += 1
            say("fault: %s started", kind)

    def reap_bg(self):
        for item in list(self.bg):
            kind, p, started = item
            if p.poll() is not None:
                self.bg.remove(item)
                if p.returncode != 0:
                    self.v.add("scripts/services.sh %s failed (status %s); see %s", kind,
                               p.returncode, os.path.join(self.d.logdir, "services.log"))
                else:
                    say("heal: %s done (%.1fs)", kind, time.monotonic() - started)

    def watch_procs(self):
        """A process that died without being killed is a violation; it is
        restarted so that the run goes on."""
        for name in list(self.d.shards) + self.coords + ["cache"]:
            if name in self.down:
                continue
            p = self.d.procs.get(name)
            if p is not None and p.poll() is not None:
                self.v.add("%s exited by itself with status %s (see %s)", name, p.returncode,
                           os.path.join(self.d.logdir, name + ".log"))
                self.d.stop(name)
                self.start_proc(name)

    # ---- quiescence and checks -------------------------------------------------
    def coord_open(self):
        return self.d.query("coord", "SELECT payment_id, txn, state, owner, "
                                     "lease_until < now() FROM payments WHERE state IN %s "
                                     "ORDER BY txn", (OPEN_STATES,))

    def missing_outcomes(self):
        with self.lock:
            missing = [pid for pid in self.order if not self.final_statuses(pid)]
            no_reject = [pid for pid in self.order
                         if self.payments[pid].conflict and
                         not any(s == "rejected" for s, _, _ in self.events.get(pid, []))]
        return missing, no_reject

    def queue_info(self, queues):
        """{queue: (messages ready, consumers)}, None for a missing queue."""
        import pika
        out = {}
        conn = pika.BlockingConnection(amqp_params(self.d.admin_url))
        try:
            for q in queues:
                ch = conn.channel()
                try:
                    m = ch.queue_declare(q, passive=True).method
                    out[q] = (m.message_count, m.consumer_count)
                    ch.close()
                except pika.exceptions.ChannelClosedByBroker:
                    out[q] = None
        finally:
            conn.close()
        return out

    def quiesce(self):
        t_end = time.monotonic() + self.args.quiesce_timeout
        last = None
        while True:
            self.watch_procs()
            pend = self.pub.pending()
            with self.lock:
                resub = len(self.resubmits)
            missing, no_reject = self.missing_outcomes()
            try:
                open_ = self.coord_open()
            except Exception as e:   # PostgreSQL may still be coming back
                open_ = [("?", 0, "unknown: %s" % e, "", False)]
            try:   # submits not taken yet; events not read yet
                qi = self.queue_info(["paytx.submit", EVENTS_QUEUE])
                waiting = sum((qi[q] or (0, 0))[0] for q in qi)
            except Exception:
                waiting = -1
            state = (pend, resub, waiting, len(missing), len(no_reject), len(open_))
            if not any(state):
                return True
            if state != last:
                say("quiescing: %d to publish, %d resubmissions due, %d waiting in "
                    "paytx.submit or the events queue, %d without outcome, %d conflicts "
                    "without rejection, %d open in the coordinator log", *state)
                last = state
            if time.monotonic() > t_end:
                break
            time.sleep(0.5)
        self.v.add("no quiescence after %ss: %d to publish, %d waiting in queues, %d "
                   "without outcome, %d conflicts without rejection, %d open in the "
                   "coordinator log", self.args.quiesce_timeout, pend, waiting, len(missing),
                   len(no_reject), len(open_))
        for row in open_[:20]:
            say("  stuck in the coordinator log: payment %s txn %s state %s owner %s "
                "lease expired %s", *row)
        log_state = {}
        try:
            ids = missing[:20] + no_reject[:20]
            if ids:
                log_state = {r[0]: r[1:] for r in self.d.query(
                    "coord", "SELECT payment_id, txn, state, outcome_sent, owner FROM payments "
                             "WHERE payment_id = ANY(%s)", (ids,))}
        except Exception:
            pass
        for pid in missing[:20]:
            say("  no outcome event: %s (coordinator log: %s)", pid, log_state.get(pid))
        for pid in no_reject[:20]:
            say("  conflicting resubmission not rejected: %s (sent %s)", pid,
                self.payments[pid].conflict_sent)
        for row in open_[:20]:
            for s in self.d.shards:
                try:
                    b = self.d.query(s, "SELECT state FROM barrier WHERE txn = %s", (row[1],))
                    say("    %s barrier for txn %s: %s", s, row[1], b)
                except Exception:
                    pass
        return False

    def check_consumers(self, timeout=30):
        """Every process we run must be consuming again: one that is alive
        but lost its broker connection for good would pass every money
        check (the others do its work) and still be broken."""
        want = {"paytx.submit": (len(self.coords), "the coordinators"),
                "paytx.status": (len(self.coords), "the coordinators")}
        for s in self.d.shards:
            want[s] = (1, s)
        want["cache"] = (1, "paytx-cache")
        want["paytx.balance"] = (1, "paytx-cache's balance queries")
        for c in self.coords:
            want["paytx.reply.%s-%s" % (self.d.name, c)] = (1, c)
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self.queue_info(list(want))
            except Exception as e:
                got = {q: "unknown (%s)" % e for q in want}
            bad = {q: g for q, g in got.items()
                   if g is None or isinstance(g, str) or g[1] != want[q][0]}
            if not bad or time.monotonic() > deadline:
                break
            time.sleep(1)
        for q, g in sorted(bad.items()):
            n, who = want[q]
            self.v.add("%s: queue %s has %s consumer(s), expected %d (is %s still connected "
                       "to RabbitMQ? see its log)", who, q,
                       "no such queue, so no" if g is None else g if isinstance(g, str)
                       else g[1], n, who)

    def check(self):
        d, v = self.d, self.v
        say("checking")
        # 1. The harness's invariants: sums, negatives, holds, balance = journal.
        d.check_invariants(v)
        # 2. The coordinator log against the ledgers.
        log = {}
        for pid, txn, state, reason, request in d.query(
                "coord", "SELECT payment_id, txn, state, reason, request FROM payments"):
            log[pid] = (txn, state, reason, request)
        decisions = {txn: commit for txn, commit in
                     d.query("coord", "SELECT txn, commit FROM decisions")}
        by_txn = {txn: pid for pid, (txn, _, _, _) in log.items()}
        entries = collections.defaultdict(list)   # txn -> [(shard, account, amount, pid)]
        barrier = collections.defaultdict(dict)   # txn -> {shard: state}
        moved = collections.defaultdict(set)      # payment_id -> txns with journal rows
        for s in d.shards:
            for txn, pid, acc, amount in d.query(s, "SELECT txn, payment_id, account, amount "
                                                    "FROM entries"):
                entries[txn].append((s, acc, int(amount), pid))
                moved[pid].add(txn)
            for txn, part, state in d.query(s, "SELECT txn, participant, state FROM barrier"):
                if part != s:
                    v.add("%s: barrier row of participant %s (txn %s)", s, part, txn)
                barrier[txn][s] = state
            for txn, acc, n in d.query(s, "SELECT txn, account, count(*) FROM entries "
                                          "GROUP BY txn, account HAVING count(*) > 1"):
                v.add("%s: %d journal rows for txn %s account %s", s, n, txn, acc)
            for acc, held in d.query(s, "SELECT id, held FROM accounts WHERE held <> 0"):
                v.add("%s: account %s still has %s held", s, acc, held)
        for pid, txns in moved.items():
            if len(txns) > 1:
                v.add("payment %s moved money in %d transactions: %s", pid, len(txns),
                      sorted(txns))
        for txn, rows in entries.items():
            if txn not in by_txn:
                v.add("journal rows for txn %s, unknown to the coordinator log: %s", txn, rows)
            else:
                for s, acc, amount, pid in rows:
                    if pid != by_txn[txn]:
                        v.add("journal row of txn %s on %s says payment %s, the log %s", txn,
                              s, pid, by_txn[txn])
        counts = collections.Counter()
        reasons = collections.Counter()
        expected_balance = collections.defaultdict(int)
        for pid in self.order:
            p = self.payments[pid]
            if pid not in log:
                v.add("payment %s (%s) is not in the coordinator log", pid, p.kind)
                continue
            txn, state, reason, request = log[pid]
            counts[state] += 1
            if state == "aborted":
                reasons[reason] += 1
            try:
                stored = net_per_account(legs_of(json.loads(request)))
            except Exception as e:
                v.add("payment %s: unreadable stored request (%s)", pid, e)
                stored = None
            mine = net_per_account(p.legs)
            if stored is not None and stored != mine:
                v.add("payment %s: the log holds legs %s, it was submitted with %s", pid,
                      stored, mine)
            shards = {self.h.shard_of(a, d.shards) for a in mine}
            rows = entries.get(txn, [])
            if state not in ("committed", "aborted"):
                v.add("payment %s txn %s is still %s", pid, txn, state)
                continue
            commit = decisions.get(txn)
            if state == "committed":
                if commit is not True:
                    v.add("payment %s txn %s committed, decision %s", pid, txn, commit)
                got = {(s, acc): amount for s, acc, amount, _ in rows}
                want = {(self.h.shard_of(a, d.shards), a): n for a, n in mine.items()}
                if got != want:
                    v.add("payment %s txn %s committed, journal %s, legs %s", pid, txn,
                          sorted(got.items()), sorted(want.items()))
                for s in shards:
                    if barrier[txn].get(s) != "committed":
                        v.add("payment %s txn %s committed, barrier on %s is %s", pid, txn, s,
                              barrier[txn].get(s))
                for a, n in mine.items():
                    expected_balance[a] += n
                if p.expect:
                    v.add("payment %s (%s) must abort (%s), it committed", pid, p.kind,
                          " or ".join(p.expect))
            else:
                if commit is True:
                    v.add("payment %s txn %s aborted, decision commit", pid, txn)
                if rows:
                    v.add("payment %s txn %s aborted, journal rows %s", pid, txn, rows)
                for s, st in barrier[txn].items():
                    if st not in ("aborted", "refused"):
                        v.add("payment %s txn %s aborted, barrier on %s is %s", pid, txn, s, st)
                if p.expect and reason not in p.expect + FAULT_REASONS:
                    v.add("payment %s (%s) aborted with %s, expected %s", pid, p.kind, reason,
                          " or ".join(p.expect + FAULT_REASONS))
                if p.fund:
                    v.add("funding payment %s aborted (%s)", pid, reason)
            # Outcome events.
            evs = self.events.get(pid, [])
            finals = {s for s, _, _ in evs if s != "rejected"}
            rejects = [(s, r) for s, r, _ in evs if s == "rejected"]
            if len(finals) != 1:
                v.add("payment %s: %d distinct final statuses in events: %s", pid,
                      len(finals), evs)
            elif finals != {state}:
                v.add("payment %s: event says %s, coordinator log %s", pid, finals, state)
            for s, r, t in evs:
                if s != "rejected" and t is not None and t != txn:
                    v.add("payment %s: event for txn %s, log txn %s", pid, t, txn)
            if p.conflict:
                if not rejects:
                    v.add("payment %s: conflicting resubmission got no rejected event", pid)
                for s, r in rejects:
                    if r != "payment_id_conflict":
                        v.add("payment %s: conflicting resubmission rejected with %s", pid, r)
            elif rejects:
                v.add("payment %s: rejected events %s without a conflicting resubmission",
                      pid, rejects)
        for pid in log:
            if pid not in self.payments:
                v.add("coordinator log has payment %s nobody submitted", pid)
        for e in self.stray_events[:20]:
            v.add("event for a payment nobody submitted: %s", e)
        # 3. Balances against what the committed payments add up to.
        for s in d.shards:
            for acc, bal in d.query(s, "SELECT id, balance FROM accounts"):
                if int(bal) != expected_balance.get(acc, 0):
                    v.add("%s balance %s, committed payments add up to %s", acc, bal,
                          expected_balance.get(acc, 0))
        # 4. Nothing but conflicts dead-lettered.
        dead = self.dead_letters()
        for code, n in dead.items():
            if code != "payment_id_conflict":
                v.add("%d message(s) dead-lettered with %s", n, code)
        self.counts, self.reasons, self.dead = counts, reasons, dead
        say("checked %d payments, %d transactions with journal rows, %d outcome events",
            len(self.order), len(entries), sum(len(e) for e in self.events.values()))

    def check_reads(self, max_sums=200000):
        """Every balance read: the payments certainly in it (committed
        outcome event received before the read began) plus some subset of
        the committed ones that may be (submitted before it ended, outcome
        not yet seen); never an aborted one."""
        with self.lock:
            committed = {pid for pid in self.order if self.final_statuses(pid) == {"committed"}}
            payments = dict(self.payments)
            committed_at = dict(self.committed_at)
            submitted_at = dict(self.submitted_at)
        per_account = collections.defaultdict(list)   # account -> [(pid, net)]
        for pid in committed:
            for acc, net in net_per_account(payments[pid].legs).items():
                if net:
                    per_account[acc].append((pid, net))
        checked = unchecked = 0
        for account, started, ended, balance, source, via in self.reader.reads:
            sure, maybe = 0, []
            for pid, net in per_account.get(account, []):
                if committed_at.get(pid, float("inf")) < started:
                    sure += net
                elif submitted_at[pid] < ended:
                    maybe.append(net)
            sums = {0}
            for net in maybe:
                sums |= {x + net for x in sums}
                if len(sums) > max_sums:
                    break
            if len(sums) > max_sums:
                unchecked += 1
                continue
            checked += 1
            if balance - sure not in sums:
                self.v.add("balance read of %s via %s (from the %s) at +%.2fs gave %d: not "
                           "the %d of every committed outcome received before it plus some of "
                           "the %d committed payments in flight (%s)", account, via, source,
                           started - Out.t0, balance, sure, len(maybe), maybe[:12])
        self.reads_checked, self.reads_unchecked = checked, unchecked
        say("balance reads checked: %d (%d too uncertain to check), %d from the cache",
            checked, unchecked, self.reader.by_source["cache"])
        if not self.reader.by_source["cache"]:
            self.v.add("no balance read was served from the cache")
        if checked < len(self.reader.reads) // 2 or not checked:
            self.v.add("only %d of %d balance reads could be checked", checked,
                       len(self.reader.reads))

    def dead_letters(self):
        import pika
        conn = pika.BlockingConnection(amqp_params(self.d.admin_url))
        ch = conn.channel()
        out = collections.Counter()
        samples = {}
        while True:
            method, props, body = ch.basic_get("paytx.dead", auto_ack=False)
            if method is None:
                break
            hdr = props.headers or {}
            code = hdr.get("x-paytx-error-code", "?")
            if isinstance(code, bytes):
                code = code.decode()
            out[code] += 1
            samples.setdefault(code, (hdr.get("x-paytx-error-text"),
                                      hdr.get("x-paytx-origin-queue"), body[:300]))
        conn.close()   # unacked: back to the queue
        for code, s in samples.items():
            if code != "payment_id_conflict":
                say("  dead letter %s: %s", code, s)
        return out

    # ---- the run -----------------------------------------------------------------
    def replay_cmd(self):
        a = self.args
        cmd = "/usr/bin/python3 tests/chaos/bank.py --seed %d --duration %g --rate %g " \
              "--coordinators %d" % (a.seed, a.duration, a.rate, a.coordinators)
        if a.accounts != 6:
            cmd += " --accounts %d" % a.accounts
        if a.faults != ",".join(FAULT_KINDS):
            cmd += " --faults %s" % a.faults
        if a.fault_every != 8.0:
            cmd += " --fault-every %g" % a.fault_every
        return cmd

    def run(self):
        a = self.args
        print("bank chaos test: seed %d" % a.seed, flush=True)
        print("replay: %s" % self.replay_cmd(), flush=True)
        schedule = fault_schedule(a.seed, a.duration, a.coordinators, a.fault_kinds,
                                  a.fault_every)
        print("fault schedule (%d faults, times from the start of the load):" % len(schedule))
        for f in schedule:
            print("  " + describe_fault(f))
        sys.stdout.flush()
        if not self.check_services_match():
            return 1
        started = time.monotonic()

        def terminated(signum, frame):   # meson's timeout, kill: clean up first
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, terminated)
        ok = False
        try:
            try:
                self.setup()
            except Exception as e:
                print("setup failed: %s" % e, file=sys.stderr)
                return 1
            try:
                ok = self.body(schedule)
            except Exception as e:
                import traceback
                traceback.print_exc()
                self.v.add("the test itself failed: %s: %s", type(e).__name__, e)
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self.teardown(keep=a.keep)
        self.summary(time.monotonic() - started)
        return 0 if ok and not len(self.v) else 1

    def body(self, schedule):
        a = self.args
        self.pub = Publisher(self.d.amqp_url)              # as the client user
        self.cons = Consumer(self.d.admin_url, self.on_event)
        self.pub.start()
        self.cons.start()
        self.fund()
        self.reader = Reader(self.d, [a for c in CURRENCIES for a in self.internal[c]])
        self.reader.start()
        # Faults as a heap of timed actions; healing actions are added as
        # the faults happen.
        import itertools
        self.seq = itertools.count()
        t_start = time.monotonic()
        heap = []
        for t, kind, target, param in schedule:
            act = {"kill-coordinator": ("kill", target, param),
                   "kill-ledger": ("kill", target, param),
                   "pause": ("stop", target, param),
                   "kill-redis": ("kill-redis", None, param)}.get(kind, (kind, None, None))
            heapq.heappush(heap, (t_start + t, next(self.seq), act))
        self.stopping_load = False
        loader = threading.Thread(target=self.load, name="load",
                                  args=(random.Random("load-%d" % a.seed), t_start), daemon=True)
        loader.start()
        say("load: %g payments/s for %gs", a.rate, a.duration)
        while heap or self.bg or not self.load_done.is_set():
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                self.run_action(heapq.heappop(heap)[2], heap)
            self.reap_bg()
            self.watch_procs()
            time.sleep(0.05)
        say("load done: %d payments submitted; faults healed", len(self.order))
        if self.down or self.paused:
            self.v.add("not healed: down %s, paused %s", self.down, self.paused)
        ok = self.quiesce()
        if ok:
            say("quiescent")
        self.stopping_load = True
        loader.join(10)
        self.check_consumers()
        self.reader.stop()
        self.pub.stop()
        self.cons.stop()
        self.check()
        self.check_reads()
        return ok

    def teardown(self, keep):
        d = getattr(self, "d", None)
        if d is None:
            return
        reader = getattr(self, "reader", None)
        if reader and reader.is_alive():
            reader.stop()
        if subprocess.run([SERVICES, "redis-cli", "PING"], env=self.services_env(),
                          capture_output=True, text=True, timeout=60).stdout.strip() != "PONG":
            subprocess.run([SERVICES, "restart-redis"], env=self.services_env(),
                           capture_output=True, timeout=60)
        for name in list(d.procs):
            self.proc_signal(name, signal.SIGCONT)
        for _, p, _ in self.bg:
            p.wait()
        for name in list(d.procs):
            d.stop(name)
        for prob in d.problems:
            self.v.add("process: %s", prob)
        d.problems = []
        for name in list(d.shards) + getattr(self, "coords", []) + ["cache"]:
            path = os.path.join(d.logdir, name + ".log")
            if not os.path.exists(path):
                continue
            levels = collections.Counter()
            with open(path, "rb") as f:
                for line in f:
                    m = LEVEL_RE.search(line, 0, 80)
                    if m:
                        levels[m.group(1)] += 1
            say("%s log: %d lines, %d warn, %d error (%.1f MB)", name, sum(levels.values()),
                levels[b"warn"], levels[b"error"], os.path.getsize(path) / 1e6)
        if keep:
            say("kept: vhost %s, databases %s", d.vhost, ", ".join(sorted(d.dbs.values())))
            return
        try:
            d.close()
        except Exception as e:
            self.v.add("teardown: %s", e)

    def summary(self, elapsed):
        a = self.args
        c = getattr(self, "counts", collections.Counter())
        rejected = sum(1 for pid in self.order
                       if any(s == "rejected" for s, _, _ in self.events.get(pid, [])))
        faults = sum(self.faults_done.values())
        by_kind = ", ".join("%s %d" % (k, self.faults_done[k]) for k in ALL_KINDS
                            if k in a.fault_kinds or self.faults_done[k])
        pub = getattr(self, "pub", None)
        print()
        print("=== bank chaos summary (seed %d, %gs of load at %g/s, %d coordinators, %.0fs in "
              "all) ===" % (a.seed, a.duration, a.rate, a.coordinators, elapsed))
        print("payments submitted %d, committed %d, aborted %d, rejected %d, resubmitted %d, "
              "faults injected %d (%s), violations %d"
              % (len(self.order), c["committed"], c["aborted"], rejected,
                 self.resubmitted_same + self.resubmitted_conflict, faults, by_kind or "none",
                 len(self.v)))
        print("  resubmitted: %d with the same content, %d with different content (conflicts)"
              % (self.resubmitted_same, self.resubmitted_conflict))
        if getattr(self, "reasons", None):
            print("  aborted by reason: %s" % ", ".join(
                "%s %d" % kv for kv in sorted(self.reasons.items())))
        if pub:
            print("  publishes confirmed %d (%d again after a lost connection), publisher "
                  "reconnects %d; events received %d, consumer reconnects %d"
                  % (pub.confirmed, pub.republished, pub.reconnects, self.cons.received,
                     self.cons.reconnects))
        reader = getattr(self, "reader", None)
        if reader:
            print("  balance reads %d (query %d, paytxctl %d; from the cache %d, the ledger "
                  "%d), failed %d, checked %d, too uncertain to check %d"
                  % (len(reader.reads), reader.by_via["query"], reader.by_via["paytxctl"],
                     reader.by_source["cache"], reader.by_source["ledger"], reader.failed,
                     getattr(self, "reads_checked", 0), getattr(self, "reads_unchecked", 0)))
        if getattr(self, "dead", None):
            print("  dead letters: %s" % dict(self.dead))
        for note in self.fault_notes:
            print("  note: %s" % note)
        if a.fault_kinds and faults < len(a.fault_kinds):
            print("  note: some fault kinds were not injected")
        if len(self.v):
            print("violations:")
            for item in self.v.items[:100]:
                print("  - " + item)
            if len(self.v) > 100:
                print("  ... and %d more" % (len(self.v) - 100))
        print("replay: %s" % self.replay_cmd())
        print("result: %s" % ("FAIL" if len(self.v) else "PASS"), flush=True)


if __name__ == "__main__":
    sys.exit(main())

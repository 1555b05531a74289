"""Integration-test harness: a private paytx deployment per test.

Each test gets its own RabbitMQ vhost and its own PostgreSQL databases on
the services that scripts/services.sh started (PAYTX_TEST_AMQP_URL,
PAYTX_TEST_PG_DSN), runs the real binaries from the build directory
(PAYTX_BUILD_DIR) and talks to them over AMQP like any client would.

On the vhost every role has its own user, with the permissions of
docker/rabbitmq-definitions.json: each daemon runs as its role's user and
the test submits as the client user. The administrator of
PAYTX_TEST_AMQP_URL (admin_ch) declares the topology and is what tests that
play a coordinator or read paytx.dead use.

PostgreSQL is used as in production: the superuser (PAYTX_TEST_PG_DSN)
creates each test's databases, owned by the owner role that paytxctl runs as
(PAYTX_TEST_PG_OWNER_DSN); each daemon runs as its own role
(PAYTX_TEST_PG_COORDINATOR_DSN, PAYTX_TEST_PG_LEDGER_DSN,
PAYTX_TEST_PG_RISK_DSN), so every test also shows that those roles' grants
are enough. The risk participant's database is made only by start_risk. The database named in the
role DSNs is replaced by the test's own.

A test that finds no service configured exits 77 (skip); one that is told
a service is there and cannot reach it fails.
"""
import atexit
import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import unittest
import urllib.parse
import uuid

try:
    import pika
    import psycopg2
except ImportError as e:  # the scripts install python3-pika / python3-psycopg2
    print("missing Python module: %s" % e, file=sys.stderr)
    sys.exit(1)

AMQP_URL = os.environ.get("PAYTX_TEST_AMQP_URL")
PG_DSN = os.environ.get("PAYTX_TEST_PG_DSN")
ROLE_DSNS = {
    "owner": os.environ.get("PAYTX_TEST_PG_OWNER_DSN"),
    "coordinator": os.environ.get("PAYTX_TEST_PG_COORDINATOR_DSN"),
    "ledger": os.environ.get("PAYTX_TEST_PG_LEDGER_DSN"),
    "risk": os.environ.get("PAYTX_TEST_PG_RISK_DSN"),
    "cache": os.environ.get("PAYTX_TEST_PG_CACHE_DSN"),
}
REDIS_URL = os.environ.get("PAYTX_TEST_REDIS_URL")   # the balance cache (start_cache)
BUILD = os.environ.get("PAYTX_BUILD_DIR", "build")
RABBITMQCTL = os.environ.get("PAYTX_TEST_RABBITMQCTL")
HMAC_KEY = "integration-test-key-0123456789"
SHARDS = ["ledger.0", "ledger.1"]
DEFINITIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docker",
                           "rabbitmq-definitions.json")
DEV_PASS_SUFFIX = "-DEV-ONLY"   # a role user's password: its name + this (scripts/services.sh)
CLIENT_USER = "paytx-client"
COORDINATOR_USER = "paytx-coordinator"
OPERATOR_USER = "paytx-operator"   # paytxctl dead: reads paytx.dead, writes paytx.submit


def participant_user(name):
    return "paytx-" + name


_background = []  # rabbitmqctl calls left running; reaped at exit


def _reap():
    for p in _background:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()


atexit.register(_reap)


def require_services():
    if not AMQP_URL or not PG_DSN or not RABBITMQCTL:
        print("PAYTX_TEST_AMQP_URL / PAYTX_TEST_PG_DSN / PAYTX_TEST_RABBITMQCTL not "
              "set: skipping (run scripts/test.sh to start the services)")
        sys.exit(77)
    missing = [k for k, v in ROLE_DSNS.items() if not v]
    if missing:  # told the cluster is there, but not as whom to run
        print("PAYTX_TEST_PG_DSN is set but not the DSNs of the roles %s "
              "(PAYTX_TEST_PG_<ROLE>_DSN, from scripts/services.sh env)" % ", ".join(missing))
        sys.exit(1)


def fnv1a64(s):
    h = 14695981039346656037
    for b in s.encode():
        h ^= b
        h = (h * 1099511628211) % (1 << 64)
    return h


def shard_of(account, shards=SHARDS):
    return shards[fnv1a64(account) % len(shards)]


def accounts_on(shard, prefix, n=1, shards=SHARDS):
    """n account ids with the given prefix that live on shard."""
    out, i = [], 0
    while len(out) < n:
        cand = "%s-%d" % (prefix, i)
        if shard_of(cand, shards) == shard:
            out.append(cand)
        i += 1
    return out


def sign(msg_type, body, key=HMAC_KEY, message_id="", timestamp=0):
    """The x-paytx-signature of a protocol message (src/lib/sign.h)."""
    data = ("%s\n%s\n%d\n" % (msg_type, message_id, timestamp)).encode() + body
    return hmac.new(key.encode(), data, hashlib.sha256).hexdigest()


_sender = "test%s" % uuid.uuid4().hex[:12]   # this process, as a message sender
_counter = itertools.count(1)


def signed_props(msg_type, body, key=HMAC_KEY, message_id=None, timestamp=None, **props):
    """AMQP properties of a correctly signed protocol message: a fresh
    "<sender>-<counter>" message_id and the current timestamp, both covered
    by the signature, as paytx's own processes send them."""
    message_id = message_id or "%s-%d" % (_sender, next(_counter))
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = dict(props.pop("headers", None) or {})
    headers["x-paytx-signature"] = sign(msg_type, body, key, message_id, timestamp)
    return pika.BasicProperties(type=msg_type, message_id=message_id, timestamp=timestamp,
                                headers=headers, **props)


def unbatch(props, body):
    """A delivery as the protocol messages it carries: itself, or each
    entry of a txn.batch with the properties it would have had alone
    (type, correlation_id, traceparent; the rest from the batch)."""
    if props.type != "txn.batch":
        return [(props, body)]
    out = []
    for e in json.loads(body)["entries"]:
        headers = dict(props.headers or {})
        headers.pop("x-paytx-signature", None)
        if "traceparent" in e:
            headers["traceparent"] = e["traceparent"]
        out.append((pika.BasicProperties(type=e["type"], correlation_id=e.get("correlation_id"),
                                         message_id=props.message_id,
                                         timestamp=props.timestamp, headers=headers),
                    json.dumps(e["body"]).encode()))
    return out


def queue_arguments(queue_type="classic", dlx=True):
    """Declare arguments of a durable shared queue, as the binaries send
    them for PAYTX_QUEUE_TYPE=queue_type (src/lib/queue_type.c)."""
    args = {"x-dead-letter-exchange": "paytx.dlx"} if dlx else {}
    if queue_type == "quorum":
        args["x-queue-type"] = "quorum"
        if dlx:
            args.update({"x-dead-letter-strategy": "at-least-once",
                         "x-overflow": "reject-publish"})
    elif queue_type != "classic":
        raise ValueError("queue_type: classic or quorum, not %r" % queue_type)
    return args


def _with_path(url, path):
    p = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((p.scheme, p.netloc, path, p.query, p.fragment))


def _with_user(url, user, password):
    p = urllib.parse.urlsplit(url)
    netloc = "%s:%s@%s" % (urllib.parse.quote(user, safe=""),
                           urllib.parse.quote(password, safe=""), p.netloc.rpartition("@")[2])
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))


def role_url(url, user):
    """url with user's DEV-ONLY credentials instead of its own."""
    return _with_user(url, user, user + DEV_PASS_SUFFIX)


def _password_hash(password):
    salt = os.urandom(4)   # RabbitMQ's rabbit_password_hashing_sha256
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def role_definitions(vhost, admin, shards):
    """Definitions (rabbitmqctl import_definitions) that create vhost and
    give it the role users of docker/rabbitmq-definitions.json, with the
    same permissions as on "/", plus all permissions to admin. A shard the
    file does not know gets a user like ledger.0's, and the coordinator the
    same rights on its queue as on ledger.0."""
    with open(DEFINITIONS, encoding="utf-8") as f:
        base = json.load(f)
    # the role users, not the file's administrator (tags: ["administrator"])
    users = {u["name"]: u for u in base["users"] if not u["tags"]}
    perms = {p["user"]: p for p in base["permissions"]
             if p["vhost"] == "/" and p["user"] in users}
    template = perms[participant_user("ledger.0")]
    for shard in shards:
        user = participant_user(shard)
        if user in perms:
            continue
        users[user] = {"name": user, "password_hash": _password_hash(user + DEV_PASS_SUFFIX),
                       "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}
        perms[user] = dict({k: v.replace(re.escape("ledger.0"), re.escape(shard))
                            for k, v in template.items()}, user=user)
        coord = perms[COORDINATOR_USER]   # which declares and binds every shard's queue
        perms[COORDINATOR_USER] = {k: v.replace(")$", "|%s)$" % re.escape(shard))
                                   if k in ("configure", "write", "read") else v
                                   for k, v in coord.items()}
    out = [dict(p, vhost=vhost) for p in perms.values()]
    out.append({"user": admin, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"})
    return {"users": list(users.values()), "vhosts": [{"name": vhost}], "permissions": out}


class Deployment:
    """One vhost, one coordinator database, one database per shard, and
    the processes running against them. queue_type is the PAYTX_QUEUE_TYPE
    of every process, and the type the shared queues are declared with."""

    count = 0

    def __init__(self, name, shards=SHARDS, queue_type="classic"):
        Deployment.count += 1  # unique even when test names share a prefix
        self.name = "t_%s_%d_%d" % (name, os.getpid(), Deployment.count)
        self.shards = shards
        self.queue_type = queue_type
        queue_arguments(queue_type)   # refuse a bad one before creating anything
        self.vhost = self.name
        self.procs = {}
        self.logs = {}
        self.problems = []   # processes that crashed or exited badly
        self.pending_replies = {}  # queue -> [(props, body)] not yet asked for
        self.conn = self.admin_conn = None
        self.cache = False   # start_cache: paytxctl reads through the cache too
        self.cache_prefix = "paytx:" + self.name
        self.logdir = os.path.join(BUILD, "integration-logs", self.name)
        os.makedirs(self.logdir, exist_ok=True)
        # vhost, users and permissions in one rabbitmqctl call (each costs 1-2 s)
        admin = urllib.parse.unquote(urllib.parse.urlsplit(AMQP_URL).username or "guest")
        defs = os.path.abspath(os.path.join(self.logdir, "rabbitmq-definitions.json"))
        with open(defs, "w", encoding="utf-8") as f:
            json.dump(role_definitions(self.vhost, admin, shards), f)
        self._ctl("import_definitions", defs)
        self.admin_url = _with_path(AMQP_URL, "/" + urllib.parse.quote(self.vhost, safe=""))
        self.amqp_url = role_url(self.admin_url, CLIENT_USER)   # what clients use
        self.dbs = {"coord": self.name + "_coord"}
        for i, s in enumerate(shards):
            self.dbs[s] = "%s_l%d" % (self.name, i)
        owner = urllib.parse.urlsplit(ROLE_DSNS["owner"]).username
        admin = psycopg2.connect(PG_DSN)
        admin.autocommit = True
        with admin.cursor() as cur:
            for db in self.dbs.values():
                cur.execute("DROP DATABASE IF EXISTS %s" % db)
                cur.execute("CREATE DATABASE %s OWNER %s" % (db, owner))
        admin.close()
        self.connect_amqp()

    def role_url(self, user):
        return role_url(self.admin_url, user)

    def connect_amqp(self):
        """(Re)open the test client's connection (as the client user), with
        fresh private reply and event queues (they die with the connection or
        the broker), and the administrator's."""
        for c in (self.conn, self.admin_conn):
            try:
                c.close()
            except Exception:
                pass
        self.admin_conn = pika.BlockingConnection(pika.URLParameters(self.admin_url))
        self.admin_ch = self.admin_conn.channel()
        self.admin_ch.confirm_delivery()
        self._declare_shared()
        self.conn = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()
        self.reply_queue = self.ch.queue_declare("", exclusive=True).method.queue
        self.events_queue = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.queue_bind(self.events_queue, "paytx.events", "payment.#")

    # -- plumbing ---------------------------------------------------------
    def _ctl(self, *args):
        subprocess.run([*shlex.split(RABBITMQCTL), *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)

    def _declare_shared(self):
        # Same arguments as the binaries declare, so the first to come wins.
        # As the administrator: the client's user may declare none of it.
        ch = self.admin_ch
        ch.exchange_declare("paytx.dlx", "fanout", durable=True)
        ch.queue_declare("paytx.dead", durable=True, arguments=self.queue_args(dlx=False))
        ch.queue_bind("paytx.dead", "paytx.dlx", "")
        ch.queue_declare("paytx.submit", durable=True, arguments=self.queue_args())
        ch.exchange_declare("paytx.submit", "fanout", durable=True)
        ch.queue_bind("paytx.submit", "paytx.submit", "")
        ch.exchange_declare("paytx.events", "topic", durable=True)
        ch.exchange_declare("paytx.participants", "direct", durable=True)
        for shard in self.shards:  # so nothing sent before a ledger starts is lost
            ch.queue_declare(shard, durable=True, arguments=self.queue_args())
            ch.queue_bind(shard, "paytx.participants", shard)

    def queue_args(self, dlx=True):
        """Arguments of a durable shared queue of this deployment."""
        return queue_arguments(self.queue_type, dlx)

    def dsn(self, which, role=None):
        """DSN of database which ("coord", a shard name or "risk") as role
        ("owner", "coordinator", "ledger", "risk"; None: the superuser, for
        test checks)."""
        return _with_path(ROLE_DSNS[role] if role else PG_DSN, "/" + self.dbs[which])

    def env(self, **extra):
        env = dict(os.environ)
        env.update({
            "PAYTX_AMQP_URL": self.amqp_url,
            "PAYTX_HMAC_KEY": HMAC_KEY,
            "PAYTX_SHARDS": ",".join(self.shards),
            # paytxctl's; each daemon gets its own role's PAYTX_PG_DSN
            "PAYTX_LEDGER_DSNS": ",".join("%s=%s" % (s, self.dsn(s, "owner"))
                                          for s in self.shards),
            "PAYTX_PG_DSN": self.dsn("coord", "owner"),
            "PAYTX_AMQP_URL_OPERATOR": self.role_url(OPERATOR_USER),
            "PAYTX_LOG_FORMAT": "json",
            "PAYTX_LOG_LEVEL": "debug",
            "PAYTX_QUEUE_TYPE": self.queue_type,
        })
        if "risk" in self.dbs:
            env["PAYTX_RISK_DSN"] = self.dsn("risk", "owner")
        else:
            env.pop("PAYTX_RISK_DSN", None)
        # the cache only where a test starts one, under the test's own prefix
        env.pop("PAYTX_REDIS_URL", None)
        if self.cache:
            env["PAYTX_REDIS_URL"] = REDIS_URL
        env["PAYTX_CACHE_PREFIX"] = self.cache_prefix
        env.pop("PAYTX_CRASH_AT", None)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def start(self, name, argv, **env):
        log = open(os.path.join(self.logdir, name + ".log"), "ab")
        self.logs[name] = log
        self.procs[name] = subprocess.Popen(argv, env=self.env(**env), stdout=log,
                                            stderr=subprocess.STDOUT)
        return self.procs[name]

    def start_coordinator(self, name="coordinator", **env):
        env.setdefault("PAYTX_COORDINATOR_ID", self.name + "-" + name)
        env.setdefault("PAYTX_AMQP_URL", self.role_url(COORDINATOR_USER))
        env.setdefault("PAYTX_PREPARE_TIMEOUT_MS", 3000)
        env.setdefault("PAYTX_PG_DSN", self.dsn("coord", "coordinator"))
        return self.start(name, [os.path.join(BUILD, "paytx-coordinator")], **env)

    def start_ledger(self, shard, **env):
        env.setdefault("PAYTX_STATUS_AFTER_MS", 2000)
        env.setdefault("PAYTX_PG_DSN", self.dsn(shard, "ledger"))
        env.setdefault("PAYTX_AMQP_URL", self.role_url(participant_user(shard)))
        return self.start(shard, [os.path.join(BUILD, "paytx-ledger")],
                          PAYTX_PARTICIPANT=shard, **env)

    def start_risk(self, name="risk", **env):
        """A paytx-risk process (participant "risk"; name tells replicas
        apart), as the paytx_risk role and the paytx-risk user. The first
        call creates the risk database and migrates it (paytxctl migrate
        with PAYTX_RISK_DSN). The coordinators send it prepares only once
        they run with PAYTX_PARTICIPANTS=risk."""
        if "risk" not in self.dbs:
            self.dbs["risk"] = self.name + "_risk"
            owner = urllib.parse.urlsplit(ROLE_DSNS["owner"]).username
            admin = psycopg2.connect(PG_DSN)
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute("DROP DATABASE IF EXISTS %s" % self.dbs["risk"])
                cur.execute("CREATE DATABASE %s OWNER %s" % (self.dbs["risk"], owner))
            admin.close()
            self.ctl("migrate")
            # as for the shards (_declare_shared): wait_consumers may ask at once
            self.admin_ch.queue_declare("risk", durable=True, arguments=self.queue_args())
            self.admin_ch.queue_bind("risk", "paytx.participants", "risk")
        env.setdefault("PAYTX_STATUS_AFTER_MS", 2000)
        env.setdefault("PAYTX_PG_DSN", self.dsn("risk", "risk"))
        env.setdefault("PAYTX_AMQP_URL", self.role_url(participant_user("risk")))
        return self.start(name, [os.path.join(BUILD, "paytx-risk")],
                          PAYTX_PARTICIPANT="risk", **env)

    def start_cache(self, name="cache", **env):
        """A paytx-cache process (participant "cache"), as the paytx_cache
        role and the paytx-cache user, on Redis PAYTX_TEST_REDIS_URL under
        this deployment's own key prefix. Skips the test (77) when no Redis
        is configured. The coordinators send it prepares only once they run
        with PAYTX_PARTICIPANTS=cache; paytxctl then reads through it."""
        if not REDIS_URL:
            print("PAYTX_TEST_REDIS_URL not set: skipping (scripts/services.sh starts Redis)")
            sys.exit(77)
        if not self.cache:
            self.cache = True
            self.admin_ch.queue_declare("cache", durable=True,
                                        arguments={"x-dead-letter-exchange": "paytx.dlx"})
            self.admin_ch.queue_bind("cache", "paytx.participants", "cache")
            # as paytx-cache declares them, so wait_consumers may ask at once
            self.admin_ch.exchange_declare("paytx.balance", "fanout", durable=True)
            self.admin_ch.queue_declare("paytx.balance", durable=True,
                                        arguments={"x-dead-letter-exchange": "paytx.dlx"})
            self.admin_ch.queue_bind("paytx.balance", "paytx.balance", "")
            self.balance_queue = self.ch.queue_declare("", exclusive=True).method.queue
        env.setdefault("PAYTX_STATUS_AFTER_MS", 2000)
        env.setdefault("PAYTX_PG_DSN", self.dsn("coord", "cache"))
        env.setdefault("PAYTX_LEDGER_DSNS", ",".join("%s=%s" % (s, self.dsn(s, "cache"))
                                                     for s in self.shards))
        env.setdefault("PAYTX_AMQP_URL", self.role_url(participant_user("cache")))
        return self.start(name, [os.path.join(BUILD, "paytx-cache")],
                          PAYTX_PARTICIPANT="cache", **env)

    def balance_query(self, account, timeout=30):
        """Ask paytx-cache for account's balance over AMQP (paytx.balance),
        as the client user; the reply as a dict."""
        corr = uuid.uuid4().hex
        props = pika.BasicProperties(content_type="application/json",
                                     reply_to=self.balance_queue, correlation_id=corr)
        self.ch.basic_publish("paytx.balance", "", json.dumps({"account": account}).encode(),
                              props)
        out, _ = self.wait_reply(corr, timeout, queue=self.balance_queue)
        return out

    def redis(self, *args):
        """redis-cli against the test Redis; its output, stripped."""
        u = urllib.parse.urlsplit(REDIS_URL)
        r = subprocess.run(["redis-cli", "-h", u.hostname, "-p", str(u.port or 6379),
                            *args], capture_output=True, text=True, timeout=30)
        return r.stdout.strip()

    def check_risk(self, tc):
        """No reservation left held, and each day's usage is the sum of its
        reservations: committed = used ones, reserved = held ones (0)."""
        if "risk" not in self.dbs:
            return
        tc.assertEqual(self.query("risk", "SELECT txn, account FROM reservations "
                                          "WHERE state = 'held'"), [], "held reservations")
        bad = self.query("risk", "SELECT u.account, u.currency, u.day FROM daily_usage u "
                                 "WHERE u.reserved <> 0 OR u.committed <> (SELECT "
                                 "coalesce(sum(amount), 0) FROM reservations r WHERE "
                                 "r.account = u.account AND r.currency = u.currency AND "
                                 "r.day = u.day AND r.state = 'used')")
        tc.assertEqual(bad, [], "usage that disagrees with the reservations")

    def start_all(self, **coord_env):
        self.ctl("migrate")
        for s in self.shards:
            self.start_ledger(s)
        self.start_coordinator(**coord_env)

    def stop(self, name, sig=signal.SIGTERM, timeout=20):
        """Stop a process. One that died by itself must have been killed
        (crash points use SIGKILL); one asked to stop must exit 0."""
        p = self.procs.pop(name, None)
        if not p:
            return None
        died = p.poll()
        if died is not None and died not in (0, -signal.SIGKILL):
            self.problems.append("%s died with status %s" % (name, died))
        if died is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.problems.append("%s did not stop within %ss" % (name, timeout))
                p.kill()
                p.wait()
            if sig == signal.SIGTERM and p.returncode != 0:
                self.problems.append("%s exited with status %s on SIGTERM" %
                                     (name, p.returncode))
        self.logs.pop(name).close()
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
            if marker in self.log_text(name):
                self.problems.append("%s: sanitizer report (%s) in %s" %
                                     (name, marker, os.path.join(self.logdir, name + ".log")))
                break
        return p.returncode

    def alive(self, name):
        p = self.procs.get(name)
        return p is not None and p.poll() is None

    def ctl(self, *args, check=True, timeout=60):
        r = subprocess.run([os.path.join(BUILD, "paytxctl"), *args], env=self.env(),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("paytxctl %s failed (%d): %s%s" %
                                 (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def close(self):
        for name in list(self.procs):
            self.stop(name)
        for c in (self.conn, self.admin_conn):
            try:
                c.close()
            except Exception:
                pass
        # Deleting the vhost takes a second; the next test need not wait.
        _background.append(subprocess.Popen([*shlex.split(RABBITMQCTL), "delete_vhost",
                                             self.vhost], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
        admin = psycopg2.connect(PG_DSN)
        admin.autocommit = True
        with admin.cursor() as cur:
            for db in self.dbs.values():
                cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
        admin.close()
        if self.problems:
            raise AssertionError("; ".join(self.problems))

    # -- client side ------------------------------------------------------
    def account(self, account, currency="EUR", external=False):
        args = ["account", "create", account, currency] + (["external"] if external else [])
        self.ctl(*args)

    def fund(self, account, amount, currency="EUR", source="world"):
        """Create source (external) if needed and move amount into account."""
        self.account(source, currency, external=True)
        out = self.pay_and_wait({"payment_id": "fund-%s-%s" % (account, uuid.uuid4().hex[:8]),
                                 "from": source, "to": account, "amount": amount,
                                 "currency": currency})
        assert out["status"] == "committed", out

    def publish_raw(self, body, props=None, routing_key="paytx.submit", exchange="paytx.submit"):
        if isinstance(body, str):
            body = body.encode()
        props = props or pika.BasicProperties(content_type="application/json",
                                              delivery_mode=2, reply_to=self.reply_queue,
                                              correlation_id=uuid.uuid4().hex)
        self.ch.basic_publish(exchange, routing_key, body, props)
        return props.correlation_id

    def submit(self, payment, reply=True, msg_type="payment.submit", headers=None):
        body = payment if isinstance(payment, (bytes, str)) else json.dumps(payment)
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                     type=msg_type,
                                     reply_to=self.reply_queue if reply else None,
                                     correlation_id=uuid.uuid4().hex, headers=headers)
        return self.publish_raw(body, props)

    def wait_reply(self, correlation_id=None, timeout=30, queue=None):
        """The next reply (with that correlation_id, if given). Replies for
        other correlation ids are kept for later calls, not dropped."""
        queue = queue or self.reply_queue
        pending = self.pending_replies.setdefault(queue, [])
        deadline = time.time() + timeout
        while True:
            for i, (props, body) in enumerate(pending):
                if correlation_id is None or props.correlation_id == correlation_id:
                    del pending[i]
                    return json.loads(body), props
            if time.time() >= deadline:
                raise AssertionError("no reply on %s within %ss" % (queue, timeout))
            method, props, body = self.ch.basic_get(queue, auto_ack=True)
            if method is None:
                self.conn.sleep(0.02)
            else:
                pending.extend(unbatch(props, body))

    def pay_and_wait(self, payment, timeout=30):
        corr = self.submit(payment)
        out, _ = self.wait_reply(corr, timeout)
        return out

    def events(self):
        out = []
        while True:
            method, props, body = self.ch.basic_get(self.events_queue, auto_ack=True)
            if method is None:
                return out
            out.append((method.routing_key, json.loads(body)))

    def dead_count(self):
        return self.admin_ch.queue_declare("paytx.dead", passive=True).method.message_count

    def dead_letters(self):
        out = []
        while True:
            method, props, body = self.admin_ch.basic_get("paytx.dead", auto_ack=True)
            if method is None:
                return out
            out.append((props, body))

    # -- database views ---------------------------------------------------
    def query(self, which, sql, args=()):
        c = psycopg2.connect(self.dsn(which))
        try:
            with c.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else None
        finally:
            c.close()

    def balance(self, account):
        rows = self.query(shard_of(account, self.shards),
                          "SELECT balance, held FROM accounts WHERE id = %s", (account,))
        return rows[0] if rows else None

    def journal(self, account):
        return self.query(shard_of(account, self.shards),
                          "SELECT payment_id, amount FROM entries WHERE account = %s "
                          "ORDER BY id", (account,))

    def check_invariants(self, tc, settle=True):
        """Money conserved, nothing negative that may not be, no open hold.
        First (settle) waits until no payment is in flight: an abort is
        answered before every participant has released its holds."""
        if settle:
            self.wait_for(lambda: self.query("coord", "SELECT count(*) FROM payments WHERE state "
                                             "IN ('preparing', 'committing', 'aborting')")
                          == [(0,)], timeout=30, what="no payment in flight")
        totals = {}
        for s in self.shards:
            for cur, total in self.query(s, "SELECT currency, sum(balance) FROM accounts "
                                            "GROUP BY currency"):
                totals[cur] = totals.get(cur, 0) + int(total)
            neg = self.query(s, "SELECT id FROM accounts WHERE NOT external AND balance < 0")
            tc.assertEqual(neg, [], "negative non-external accounts on %s" % s)
            held = self.query(s, "SELECT txn, account FROM open_holds")
            tc.assertEqual(held, [], "open holds on %s" % s)
            bad = self.query(s, "SELECT id FROM accounts a WHERE balance <> "
                                "(SELECT coalesce(sum(amount), 0) FROM entries e "
                                "WHERE e.account = a.id)")
            tc.assertEqual(bad, [], "balances that disagree with the journal on %s" % s)
        for cur, total in totals.items():
            tc.assertEqual(total, 0, "sum of %s balances" % cur)
        self.check_risk(tc)

    def wait_outcomes_marked(self):
        """Until every payment's outcome is marked sent. A coordinator
        restarted before that re-sends and marks one: a log commit of its
        own, which shifts a crash point counted with @N."""
        self.wait_for(lambda: self.query("coord", "SELECT count(*) FROM payments "
                                         "WHERE NOT outcome_sent") == [(0,)],
                      what="every outcome marked sent")

    def wait_for(self, predicate, timeout=30, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError("timed out waiting for " + what)

    def wait_consumers(self, queue, n, timeout=30):
        """Until n consumers are on queue (processes start at their own pace)."""
        self.wait_for(lambda: self.admin_ch.queue_declare(queue, passive=True).method
                      .consumer_count >= n, timeout, "%d consumers on %s" % (n, queue))

    def cpu_seconds(self, name):
        """CPU time (user + system) the process has used so far."""
        with open("/proc/%d/stat" % self.procs[name].pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_text(self, name):
        path = os.path.join(self.logdir, name + ".log")
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")


class PaytxTestCase(unittest.TestCase):
    """Starts a fresh deployment per test; checks the ledger invariants at
    the end of every test that did not fail."""

    start_services = True
    coord_env = {}
    queue_type = "classic"

    def setUp(self):
        self.d = Deployment(self._testMethodName[5:25], queue_type=self.queue_type)
        self.addCleanup(self.d.close)
        if self.start_services:
            self.d.start_all(**self.coord_env)

    def alice_and_bob(self, funds=1000, currency="EUR"):
        """Accounts self.a on ledger.0 (funded from an external account) and
        self.b on ledger.1, so a transfer between them crosses shards."""
        self.a = accounts_on("ledger.0", "alice")[0]
        self.b = accounts_on("ledger.1", "bob")[0]
        self.d.account(self.a, currency)
        self.d.account(self.b, currency)
        if funds:
            self.d.fund(self.a, funds, currency)
        return self.a, self.b


def main():
    require_services()
    unittest.main(verbosity=2)

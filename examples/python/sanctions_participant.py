#!/usr/bin/env python3
"""A paytx participant in plain Python 3 + pika: sanctions screening.

It votes no (reason "sanctioned_party") on any payment with a leg whose
account is on a blocklist, yes otherwise. It uses no paytx code: everything
it does on the wire is in docs/participants.md, and the integration test
tests/integration/test_python_participant.py runs it against the real
coordinator to show the protocol is language-neutral.

What it must do, like every participant (src/lib/participant.c):
  * verify every delivery: HMAC-SHA256 signature, timestamp inside the
    replay window, message_id not accepted before (unless the broker
    redelivers);
  * decode strictly (the rules and fault texts of src/lib/message.c) and
    dead-letter, never drop, what it refuses;
  * keep a barrier per txn in a durable store (SQLite here), so duplicates,
    restarts and an abort that overtakes its prepare are all harmless;
  * reply (vote / ack) only after its state is committed, wait for the
    broker's publisher confirm, and only then ack the input.

txn.batch: whenever one loop iteration of a coordinator has two or more
requests for us (that is, under any concurrency), they come as one txn.batch
message, {"entries": [{"type", "correlation_id", "traceparent", "body"}]}.
The batch is verified (signature, replay) and decoded as a whole: one bad
entry refuses the whole delivery, dead-lettered as it came with a fault
naming the entry ("entries[1].body.txn: required"), and no entry of it is
applied. A valid batch is applied entry by entry through the barrier, in
order, in one SQLite transaction; an entry refused as impossible (a commit
without our yes vote, an abort after our commit) changes nothing and is
dead-lettered alone, as the message it would have been, with header
x-paytx-batch-entry = its index and without the batch's signature. The
answers echo each entry's correlation_id and traceparent; several go back
as one txn.batch (a single one alone). Each accepted batch is logged as
"txn.batch #<n>: <k> entries".
One delivery at a time keeps it short; the C SDK collects many instead.

Failures: on any broker or SQLite error it exits with a traceback instead
of reconnecting (the C SDK reconnects). Run it under a supervisor that
restarts it (systemd, a container restart policy): unacked deliveries go
back to the queue and the barrier answers them exactly as before.

Settings (environment):
  PAYTX_AMQP_URL          amqp://paytx-sanctions:...@host:port/%2f
  PAYTX_HMAC_KEY          the shared signing key (16..64 bytes)
  PAYTX_PARTICIPANT       queue / routing key / name in votes; default sanctions
  PAYTX_REPLAY_WINDOW_S   default 900
  PAYTX_STATUS_AFTER_MS   ask for the decision on a yes vote this old; 15000
  PAYTX_QUEUE_TYPE        classic (default) or quorum, as every other process
  SANCTIONS_DB            SQLite file; default sanctions.sqlite3
  SANCTIONS_BLOCKLIST     comma-separated blocked account ids
  SANCTIONS_BLOCKLIST_FILE  one blocked account id per line (# comments);
                          re-read when it changes
"""
import decimal
import hashlib
import hmac
import json
import os
import re
import signal
import sqlite3
import sys
import time

import pika

NAME = os.environ.get("PAYTX_PARTICIPANT", "sanctions")
KEY = os.environ.get("PAYTX_HMAC_KEY", "").encode()
WINDOW_S = int(os.environ.get("PAYTX_REPLAY_WINDOW_S") or 900)
STATUS_AFTER_MS = int(os.environ.get("PAYTX_STATUS_AFTER_MS") or 15000)
QUEUE_TYPE = os.environ.get("PAYTX_QUEUE_TYPE") or "classic"
REPLAY_SPAN = 4096    # counters remembered per sender, as src/lib/replay.h
SIGNATURE = "x-paytx-signature"


def log(fmt, *args):
    print("%s: %s" % (NAME, fmt % args), file=sys.stderr, flush=True)


def queue_arguments():
    """Our queue's declare arguments, as the C processes send them for
    PAYTX_QUEUE_TYPE (src/lib/queue_type.c): RabbitMQ refuses a declare
    whose arguments differ from the queue's."""
    args = {"x-dead-letter-exchange": "paytx.dlx"}
    if QUEUE_TYPE == "quorum":
        args.update({"x-queue-type": "quorum", "x-dead-letter-strategy": "at-least-once",
                     "x-overflow": "reject-publish"})
    elif QUEUE_TYPE != "classic":
        sys.exit("setting PAYTX_QUEUE_TYPE: classic or quorum")
    return args


class Refused(Exception):
    """A message to dead-letter: code is a paytx error code (src/lib/error.c)."""

    def __init__(self, code, text):
        super().__init__(text)
        self.code, self.text = code, text


# -- signing and replay protection (src/lib/sign.c, src/lib/replay.c) --------

def signature(msg_type, message_id, timestamp, body):
    """hex HMAC-SHA256 of type "\\n" message_id "\\n" timestamp "\\n" body."""
    head = "%s\n%s\n%d\n" % (msg_type, message_id, timestamp)
    return hmac.new(KEY, head.encode() + body, hashlib.sha256).hexdigest()


class ReplayGuard:
    """Accepts each "<sender>-<counter>" once, within +-WINDOW_S of now.
    In memory like paytx's own: after a restart the time window alone
    bounds what can be replayed, and the barrier makes a replay harmless."""

    def __init__(self):
        self.senders = {}   # sender -> [newest counter, counters seen, last heard]

    def check(self, message_id, timestamp, redelivered):
        sender, _, counter = (message_id or "").rpartition("-")
        if not sender or len(sender) > 47 or not (counter.isascii() and counter.isdigit()) \
                or len(counter) > 19 or int(counter) == 0:
            raise Refused("invalid_request", "message_id missing or not <sender>-<counter>")
        if not timestamp or timestamp <= 0:
            raise Refused("invalid_request", "timestamp missing")
        now = int(time.time())
        if abs(timestamp - now) > WINDOW_S:
            raise Refused("replayed", "timestamp outside the replay window")
        counter = int(counter)
        s = self.senders.setdefault(sender, [0, set(), now])
        s[2] = now
        if not redelivered:   # only the broker sets it: the same delivery again
            if counter <= s[0] - REPLAY_SPAN:
                raise Refused("replayed", "message_id too far behind its sender's newest")
            if counter in s[1]:
                raise Refused("replayed", "message_id seen before")
        s[0] = max(s[0], counter)
        s[1].add(counter)
        if len(s[1]) > 2 * REPLAY_SPAN:   # keep memory bounded per sender
            s[1] = {c for c in s[1] if c > s[0] - REPLAY_SPAN}

    def forget_silent(self):
        """A sender silent for a whole window: all it sent is stale by now."""
        now = int(time.time())
        for sender in [k for k, s in self.senders.items() if s[2] < now - WINDOW_S]:
            del self.senders[sender]


def verify(method, props, body, guard):
    """Signature first (it covers message_id and timestamp), then replays."""
    sig = (props.headers or {}).get(SIGNATURE)
    if isinstance(sig, str):
        sig = sig.encode()
    if "\n" in (props.message_id or ""):   # would make the signed input ambiguous
        raise Refused("bad_signature", "newline in message_id")
    want = signature(props.type, props.message_id or "", props.timestamp or 0, body)
    if not isinstance(sig, bytes) or not hmac.compare_digest(want.encode(), sig):
        raise Refused("bad_signature", "missing or bad x-paytx-signature")
    guard.check(props.message_id, props.timestamp, method.redelivered)


# -- decoding, as strictly as src/lib/strict_json.c and src/lib/message.c ----
# Same error codes and fault texts as the C decoder wherever Python's json
# module lets us tell the case apart.

MESSAGE_MAX = 65536   # PAYTX_MESSAGE_MAX
DEPTH_MAX = 16        # PAYTX_JSON_DEPTH_MAX
LEGS_MAX = 16         # PAYTX_LEGS_MAX
BATCH_MAX = 256       # PAYTX_BATCH_MAX
CORR_MAX = 127        # PAYTX_CORR_MAX
AMOUNT_MAX = 10 ** 15
REQUESTS = ("txn.prepare", "txn.commit", "txn.abort")
ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
CORR_RE = re.compile(r"[ !#-\[\]-~]{0,%d}" % CORR_MAX)   # printable ASCII less " and \
TRACEPARENT_RE = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
SAFE_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def parse_json(body):
    """The body as one JSON object, or Refused as strict_json_parse would."""
    if len(body) > MESSAGE_MAX:
        raise Refused("message_too_large", "message: %d bytes, more than %d"
                      % (len(body), MESSAGE_MAX))
    if not body:
        raise Refused("invalid_request", "message: no body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Refused("invalid_encoding", "invalid UTF-8 at byte %d" % e.start)

    def pairs(items):
        keys = [k for k, _ in items]
        for k in keys:
            if keys.count(k) > 1:
                raise Refused("malformed_json", "duplicate key '%s'" % k
                              if SAFE_NAME_RE.fullmatch(k) else "duplicate key")
        return dict(items)

    def constant(name):
        raise Refused("malformed_json", "malformed JSON: %s is not JSON" % name)
    try:
        msg = json.loads(text, object_pairs_hook=pairs, parse_float=decimal.Decimal,
                         parse_constant=constant)
    except (ValueError, RecursionError):
        raise Refused("malformed_json", "the message is not well-formed JSON")
    check_values(msg, 1)
    if not isinstance(msg, dict):
        raise Refused("wrong_type", "message: must be a JSON object")
    return msg


def check_values(v, depth):
    """What json.loads lets through and strict_json.c does not."""
    if depth > DEPTH_MAX:
        raise Refused("malformed_json", "nesting too deep: more than %d levels" % DEPTH_MAX)
    if isinstance(v, str) and any("\ud800" <= c <= "\udfff" for c in v):
        raise Refused("invalid_encoding", "unpaired surrogate escape")
    if isinstance(v, dict):
        for k, x in v.items():
            if "\0" in k:
                raise Refused("invalid_request", "object key contains NUL")
            check_values(k, depth)
            check_values(x, depth + 1)
    elif isinstance(v, list):
        for x in v:
            check_values(x, depth + 1)


class Fields:
    """One JSON object being decoded and where it sits ("", "legs[1]"), as
    struct fields in src/lib/message.c: faults read "path.key: rule"."""

    def __init__(self, obj, path=""):
        self.obj, self.path = obj, path

    def fail(self, key, code, rule):
        if not self.path and key is None:
            key = "message"
        sep = "." if self.path and key else ""
        raise Refused(code, "%s%s%s: %s" % (self.path, sep, key or "", rule))

    def only(self, allowed):
        for key in self.obj:
            if key not in allowed:
                if SAFE_NAME_RE.fullmatch(key):
                    self.fail(key, "invalid_request", "unknown field")
                self.fail(None, "invalid_request", "unknown field (name not shown)")

    def find(self, key):
        if key not in self.obj:
            self.fail(key, "missing_field", "required")
        return self.obj[key]

    def integer(self, key):
        v = self.find(key)
        if not isinstance(v, int) or isinstance(v, bool):
            self.fail(key, "wrong_type", "must be an integer")
        return v

    def int64(self, key, low):
        v = self.integer(key)
        if not low <= v < 2 ** 63:
            self.fail(key, "amount_out_of_range", "must be an integer from %d to 2^63-1" % low)
        return v

    def string(self, key):
        v = self.find(key)
        if not isinstance(v, str):
            self.fail(key, "wrong_type", "must be a string")
        return v

    def ident(self, key):
        v = self.string(key)
        if not ID_RE.fullmatch(v):
            self.fail(key, "invalid_request", "must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
        return v


def decode_leg(v, i):
    f = Fields(v, "legs[%d]" % i)
    if not isinstance(v, dict):
        f.fail(None, "wrong_type", "must be an object")
    f.only({"account", "amount", "currency"})
    f.ident("account")
    amount = f.integer("amount")
    if amount == 0 or not -AMOUNT_MAX <= amount <= AMOUNT_MAX:
        f.fail("amount", "amount_out_of_range",
               "must be a nonzero integer of at most 10^15 in magnitude")
    cur = f.string("currency")
    if not re.fullmatch(r"[A-Z]{3}", cur):
        f.fail("currency", "invalid_request", "must be 3 upper-case letters A-Z")
    return v


def decode_fields(msg_type, obj):
    """A prepare, commit or abort body (a parsed object), as
    msg_prepare_from_json / msg_decision_from_json check it."""
    f = Fields(obj)
    prepare = msg_type == "txn.prepare"
    f.only({"txn", "payment_id", "legs", "deadline_ms"} if prepare else {"txn", "payment_id"})
    f.int64("txn", 1)
    f.ident("payment_id")
    if prepare:
        legs = f.find("legs")
        if not isinstance(legs, list):
            f.fail("legs", "wrong_type", "must be an array")
        if not 1 <= len(legs) <= LEGS_MAX:
            f.fail("legs", "invalid_request", "must have 1 to %d legs" % LEGS_MAX)
        for i, leg in enumerate(legs):
            decode_leg(leg, i)
        f.int64("deadline_ms", 0)
    return obj


def decode_entry(i, v):
    """entries[i] of a txn.batch to a participant, as entry_from_json in
    src/lib/message_batch.c: (type, correlation_id, traceparent, body)."""
    where = "entries[%d]" % i
    if not isinstance(v, dict):
        raise Refused("wrong_type", where + ": must be an object")
    for key in v:
        if key not in ("type", "correlation_id", "traceparent", "body"):
            raise Refused("invalid_request", where + ("." + key + ": unknown field"
                          if SAFE_NAME_RE.fullmatch(key) else ": unknown field (name not shown)"))
    msg_type = v.get("type")
    if not isinstance(msg_type, str):
        raise Refused("invalid_request", where + ".type: required, a string")
    if msg_type not in REQUESTS:
        raise Refused("unknown_message_type",
                      where + ".type: must be txn.prepare, txn.commit or txn.abort")
    corr = v.get("correlation_id")
    if corr is not None and not (isinstance(corr, str) and CORR_RE.fullmatch(corr)):
        raise Refused("invalid_request", where + ".correlation_id: must be a string of at "
                      "most %d printable ASCII characters" % CORR_MAX)
    trace = v.get("traceparent")
    if trace is not None and not (isinstance(trace, str) and TRACEPARENT_RE.fullmatch(trace)):
        raise Refused("invalid_request", where + ".traceparent: must be a W3C traceparent")
    if "body" not in v:
        raise Refused("missing_field", where + ".body: required")
    if not isinstance(v["body"], dict):
        raise Refused("wrong_type", where + ".body: must be an object")
    try:
        body = decode_fields(msg_type, v["body"])
    except Refused as err:
        # a fault of the body object itself ("message: ...") names the body
        text = err.text[len("message"):] if err.text.startswith("message: ") \
            else "." + err.text
        raise Refused(err.code, "%s.body%s" % (where, text))
    return msg_type, corr or None, trace, body


def decode(msg_type, body, props):
    """A delivery as its protocol messages: a list of (type, correlation_id,
    traceparent, body), one for a message alone, each entry of a txn.batch.
    Refused as a whole when any part of it is invalid."""
    msg = parse_json(body)
    if msg_type != "txn.batch":
        trace = (props.headers or {}).get("traceparent")
        if isinstance(trace, bytes):
            trace = trace.decode("latin-1")
        if not (isinstance(trace, str) and TRACEPARENT_RE.fullmatch(trace)):
            trace = None   # only the W3C form is carried on
        corr = props.correlation_id
        return [(msg_type, corr if corr and CORR_RE.fullmatch(corr) else None, trace,
                 decode_fields(msg_type, msg))]
    for key in msg:
        if key != "entries":
            raise Refused("invalid_request", "%s: unknown field"
                          % (key if SAFE_NAME_RE.fullmatch(key) else "(name not shown)"))
    if "entries" not in msg:
        raise Refused("missing_field", "entries: required")
    entries = msg["entries"]
    if not isinstance(entries, list) or not 1 <= len(entries) <= BATCH_MAX:
        raise Refused("invalid_request", "entries: must be an array of 1 to %d entries"
                      % BATCH_MAX)
    return [decode_entry(i, v) for i, v in enumerate(entries)]


# -- the barrier: this participant's durable state ---------------------------

class Store:
    """One row per txn: what we voted and what was decided. Every change is
    one SQLite transaction, committed (fsync'd) before anything is sent."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, isolation_level=None)   # explicit BEGINs
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.execute("""CREATE TABLE IF NOT EXISTS barrier (
            txn INTEGER PRIMARY KEY,
            payment_id TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN
                ('prepared', 'refused', 'committed', 'aborted')),
            reason TEXT, detail TEXT,
            updated_ms INTEGER NOT NULL)""")

    def _get(self, txn):
        return self.db.execute("SELECT state, reason, detail FROM barrier WHERE txn = ?",
                               (txn,)).fetchone()

    def _put(self, txn, payment_id, state, reason=None, detail=None):
        self.db.execute("INSERT INTO barrier VALUES (?, ?, ?, ?, ?, ?)",
                        (txn, payment_id, state, reason, detail, int(time.time() * 1000)))

    def _set(self, txn, state):   # keeps the vote's reason
        self.db.execute("UPDATE barrier SET state = ?, updated_ms = ? WHERE txn = ?",
                        (state, int(time.time() * 1000), txn))

    def step(self, fn, *args):
        """Run fn in one transaction; commit on return, roll back on raise."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            out = fn(*args)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return out

    def prepare(self, msg, blocked):
        """The vote as (yes, reason, detail); the same vote every time."""
        row = self._get(msg["txn"])
        if row is None:
            hit = sorted({l["account"] for l in msg["legs"]} & blocked)
            if hit:
                row = ("refused", "sanctioned_party", "account %s is on the sanctions "
                       "blocklist" % hit[0])
            else:
                row = ("prepared", None, None)
            self._put(msg["txn"], msg["payment_id"], *row)
        state, reason, detail = row
        if state == "aborted":   # the abort overtook this prepare: never reserve now
            return False, "aborted", "the transaction was already aborted here"
        return state in ("prepared", "committed"), reason, detail

    def commit(self, msg):
        state = (self._get(msg["txn"]) or (None,))[0]
        if state == "prepared":
            self._set(msg["txn"], "committed")
        elif state != "committed":   # no yes vote here: refuse, change nothing
            raise Refused("protocol_violation",
                          "commit for a transaction this participant did not vote yes on")

    def abort(self, msg):
        state = (self._get(msg["txn"]) or (None,))[0]
        if state == "committed":     # never un-commit
            raise Refused("protocol_violation",
                          "abort for a transaction this participant already committed")
        if state is None:            # the barrier that makes a late prepare vote no
            self._put(msg["txn"], msg["payment_id"], "aborted")
        elif state != "aborted":     # prepared or refused
            self._set(msg["txn"], "aborted")

    def in_doubt(self, older_than_ms):
        return [t for (t,) in self.db.execute(
            "SELECT txn FROM barrier WHERE state = 'prepared' AND updated_ms < ? "
            "ORDER BY updated_ms LIMIT 256", (older_than_ms,))]


class Blocklist:
    """SANCTIONS_BLOCKLIST plus SANCTIONS_BLOCKLIST_FILE, re-read on change."""

    def __init__(self):
        self.fixed = {a.strip() for a in os.environ.get("SANCTIONS_BLOCKLIST", "").split(",")
                      if a.strip()}
        self.path = os.environ.get("SANCTIONS_BLOCKLIST_FILE")
        self.mtime, self.from_file = None, set()

    def current(self):
        if self.path:
            mtime = os.stat(self.path).st_mtime_ns   # a missing file is a fault: crash
            if mtime != self.mtime:
                with open(self.path, encoding="utf-8") as f:
                    self.from_file = {l.split("#")[0].strip() for l in f} - {""}
                self.mtime = mtime
        return self.fixed | self.from_file


# -- the participant ----------------------------------------------------------

class Participant:

    def __init__(self, url):
        self.store = Store(os.environ.get("SANCTIONS_DB", "sanctions.sqlite3"))
        self.blocklist = Blocklist()
        self.guard = ReplayGuard()
        # "<sender>-<counter>": a new random sender at every start, so our
        # counter may restart at 1 without looking like a replay.
        self.sender = "py%s-%d" % (os.urandom(6).hex(), os.getpid())
        self.counter = 0
        self.batches = 0   # txn.batch deliveries accepted, for the log
        self.next_status_ms = 0
        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()   # basic_publish now waits for the broker's ack
        # Our part of the topology, with the arguments everyone uses; the
        # coordinator binds the queue to paytx.participants (we may not).
        self.ch.exchange_declare("paytx.dlx", "fanout", durable=True)
        self.ch.queue_declare(NAME, durable=True, arguments=queue_arguments())
        self.ch.basic_qos(prefetch_count=16)

    def publish(self, routing_key, msg_type, body, reply_to=None, correlation_id=None,
                traceparent=None):
        """A signed protocol message through the default exchange, confirmed."""
        self.counter += 1
        message_id = "%s-%d" % (self.sender, self.counter)
        timestamp = int(time.time())
        headers = {SIGNATURE: signature(msg_type, message_id, timestamp, body)}
        if traceparent:
            headers["traceparent"] = traceparent
        self.ch.basic_publish("", routing_key, body, pika.BasicProperties(
            content_type="application/json", delivery_mode=1, type=msg_type,
            message_id=message_id, timestamp=timestamp, reply_to=reply_to,
            correlation_id=correlation_id, headers=headers))

    def dead_letter(self, props, body, err, entry=None):
        """The message as it came, plus why, to paytx.dlx (routing key = our
        queue), persistent and confirmed: nothing refused is lost. With
        entry = (index, type, correlation_id, body): only that entry of the
        txn.batch props came with, as the message it would have been alone
        (the batch's signature, which does not cover it, left out)."""
        headers = dict(props.headers or {})
        fields = dict(vars(props), delivery_mode=2)
        if entry is not None:
            index, fields["type"], fields["correlation_id"], msg = entry
            body = json.dumps(msg, separators=(",", ":")).encode()
            headers.pop(SIGNATURE, None)
            headers["x-paytx-batch-entry"] = index
        log("dead-lettering a %s message%s: %s: %s", fields["type"] or "(untyped)",
            " (an entry of a txn.batch)" if entry else "", err.code, err.text)
        headers.update({"x-paytx-error-code": err.code, "x-paytx-error-text": err.text,
                        "x-paytx-origin-queue": NAME})
        fields["headers"] = headers
        self.ch.basic_publish("paytx.dlx", NAME, body, pika.BasicProperties(**fields))

    def handle(self, method, props, body):
        try:
            if props.type not in REQUESTS + ("txn.batch",):
                raise Refused("unknown_message_type", "participants accept txn.prepare, "
                              "txn.commit, txn.abort and txn.batch only")
            verify(method, props, body, self.guard)   # a batch as a whole
            if not props.reply_to:
                raise Refused("invalid_request", "protocol message without reply_to")
            steps = decode(props.type, body, props)   # all of it valid, or none
        except Refused as err:
            self.dead_letter(props, body, err)
            steps = []
        if props.type == "txn.batch" and steps:
            self.batches += 1
            log("txn.batch #%d: %d entries", self.batches, len(steps))
        # Every step in one SQLite transaction, committed before any answer.
        results = self.store.step(self.apply_all, steps) if steps else []
        replies = []
        for i, ((msg_type, corr, trace, msg), result) in enumerate(zip(steps, results)):
            if isinstance(result, Refused):   # impossible: refused alone
                if props.type == "txn.batch":
                    self.dead_letter(props, body, result, (i, msg_type, corr, msg))
                else:
                    self.dead_letter(props, body, result)
                continue
            replies.append(("txn.vote" if msg_type == "txn.prepare" else "txn.ack", corr,
                            trace, result))
            log("txn %d (%s): %s", msg["txn"], msg["payment_id"],
                "%s applied" % result["decision"] if "decision" in result else
                "voted %s%s" % (result["vote"], ": " + result["reason"] if "reason" in result
                                else ""))
        self.reply(props.reply_to, replies)
        # Any other failure (broker, SQLite, a nacked publish) raises and
        # ends the process before the ack below: see "Failures" at the top.
        # Only now, with the state committed and the replies confirmed: if we
        # die before this line, the broker redelivers and we answer the same.
        self.ch.basic_ack(method.delivery_tag)

    def reply(self, reply_to, replies):
        """One reply alone, as always; several as txn.batch messages of at
        most BATCH_MAX entries and MESSAGE_MAX bytes."""
        if len(replies) == 1:
            msg_type, corr, trace, result = replies[0]
            self.publish(reply_to, msg_type, json.dumps(result, separators=(",", ":")).encode(),
                         correlation_id=corr, traceparent=trace)
            return
        entries, size = [], 0
        for msg_type, corr, trace, result in replies:
            entry = {"type": msg_type, "body": result}
            if corr:
                entry["correlation_id"] = corr
            if trace:
                entry["traceparent"] = trace
            text = json.dumps(entry, separators=(",", ":"))
            if entries and (len(entries) == BATCH_MAX or
                            size + len(text) + 1 + len('{"entries":[]}') > MESSAGE_MAX):
                self.publish_batch(reply_to, entries)
                entries, size = [], 0
            entries.append(text)
            size += len(text) + 1
        if entries:
            self.publish_batch(reply_to, entries)

    def publish_batch(self, reply_to, entries):
        self.publish(reply_to, "txn.batch", ('{"entries":[%s]}' % ",".join(entries)).encode())

    def apply_all(self, steps):
        """Each step through the barrier, inside the caller's transaction:
        its reply body, or the Refused that says why it is impossible (a
        refused step changed nothing, so the others still commit)."""
        out = []
        blocked = self.blocklist.current() if any(t == "txn.prepare" for t, *_ in steps) \
            else set()
        for msg_type, _, _, msg in steps:
            try:
                out.append(self.apply(msg_type, msg, blocked))
            except Refused as err:
                out.append(err)
        return out

    def apply(self, msg_type, msg, blocked):
        reply = {"txn": msg["txn"], "participant": NAME}
        if msg_type == "txn.prepare":
            yes, reason, detail = self.store.prepare(msg, blocked)
            reply["vote"] = "yes" if yes else "no"
            if not yes:
                reply["reason"], reply["detail"] = reason, detail
        else:
            commit = msg_type == "txn.commit"
            (self.store.commit if commit else self.store.abort)(msg)
            reply["decision"] = "commit" if commit else "abort"
        return reply

    def ask_in_doubt(self):
        """A yes vote with no decision for a while: ask the coordinators
        (queue paytx.status); the decision comes back to our queue."""
        now = int(time.time() * 1000)
        if now < self.next_status_ms:
            return
        self.next_status_ms = now + STATUS_AFTER_MS // 2 + 1
        for txn in self.store.in_doubt(now - STATUS_AFTER_MS):
            log("txn %d: reservation in doubt, asking for the decision", txn)
            body = json.dumps({"txn": txn, "participant": NAME}, separators=(",", ":"))
            self.publish("paytx.status", "txn.status", body.encode(), reply_to=NAME)

    def run(self, stopping):
        for method, props, body in self.ch.consume(NAME, inactivity_timeout=1):
            if method is not None:
                self.handle(method, props, body)
            self.ask_in_doubt()
            self.guard.forget_silent()
            if stopping():
                break
        self.ch.cancel()   # unacked deliveries go back to the queue
        self.conn.close()


def main():
    url = os.environ.get("PAYTX_AMQP_URL")
    if not url or not 16 <= len(KEY) <= 64:
        print("set PAYTX_AMQP_URL and PAYTX_HMAC_KEY (16..64 bytes)", file=sys.stderr)
        return 2
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    p = Participant(url)
    log("ready on queue %s", NAME)
    p.run(lambda: bool(stop))
    return 0


if __name__ == "__main__":
    sys.exit(main())

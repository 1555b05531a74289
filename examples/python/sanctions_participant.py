#!/usr/bin/env python3
"""A paytx participant in plain Python 3 + pika: sanctions screening.

It votes no (reason "sanctioned_party") on any payment with a leg whose
account is on a blocklist, yes otherwise. It uses no paytx code: everything
it does on the wire is in docs/participants.md, and the integration test
tests/integration/test_python_participant.py runs it against the real
coordinator to show the protocol is language-neutral.

What it must do, like every participant (src/lib/participant.c):
  * verify every message: HMAC-SHA256 signature, timestamp inside the replay
    window, message_id not accepted before (unless the broker redelivers);
  * keep a barrier per txn in a durable store (SQLite here), so duplicates,
    restarts and an abort that overtakes its prepare are all harmless;
  * reply (vote / ack) only after its state is committed, wait for the
    broker's publisher confirm, and only then ack the input;
  * dead-letter, never drop, what it refuses.
One message at a time keeps it short; the C SDK batches instead.

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
import hashlib
import hmac
import json
import os
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


# -- decoding (the shapes of src/lib/message.c, checked loosely) -------------

def decode(msg_type, body):
    try:
        msg = json.loads(body)
    except (ValueError, RecursionError):   # UnicodeDecodeError is a ValueError
        raise Refused("malformed_json", "the message is not well-formed JSON")
    allowed = {"txn", "payment_id", "legs", "deadline_ms"} if msg_type == "txn.prepare" \
        else {"txn", "payment_id"}
    if not isinstance(msg, dict) or set(msg) - allowed:
        raise Refused("invalid_request", "unknown field or not an object")
    txn = msg.get("txn")
    if not isinstance(txn, int) or isinstance(txn, bool) or not 1 <= txn < 2 ** 63:
        raise Refused("wrong_type", "txn: must be an integer from 1 to 2^63-1")
    if not isinstance(msg.get("payment_id"), str):
        raise Refused("missing_field", "payment_id: required")
    if msg_type == "txn.prepare":
        legs = msg.get("legs")
        if not isinstance(legs, list) or not legs or \
                not all(isinstance(l, dict) and isinstance(l.get("account"), str)
                        for l in legs):
            raise Refused("invalid_request", "legs: must be 1 to 16 legs with an account")
    return msg


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

    def dead_letter(self, method, props, body, err):
        """The message as it came, plus why, to paytx.dlx (routing key = our
        queue), persistent and confirmed: nothing refused is lost."""
        log("dead-lettering a %s message: %s: %s", props.type or "(untyped)", err.code,
            err.text)
        headers = dict(props.headers or {})
        headers.update({"x-paytx-error-code": err.code, "x-paytx-error-text": err.text,
                        "x-paytx-origin-queue": NAME})
        copy = pika.BasicProperties(**dict(vars(props), headers=headers, delivery_mode=2))
        self.ch.basic_publish("paytx.dlx", NAME, body, copy)

    def handle(self, method, props, body):
        try:
            if props.type not in ("txn.prepare", "txn.commit", "txn.abort"):
                raise Refused("unknown_message_type", "participants accept txn.prepare, "
                              "txn.commit and txn.abort only")
            verify(method, props, body, self.guard)
            if not props.reply_to:
                raise Refused("invalid_request", "protocol message without reply_to")
            msg = decode(props.type, body)
            reply = self.apply(props.type, msg)       # durable once this returns
            trace = (props.headers or {}).get("traceparent")
            self.publish(props.reply_to, "txn.vote" if props.type == "txn.prepare"
                         else "txn.ack", json.dumps(reply, separators=(",", ":")).encode(),
                         correlation_id=props.correlation_id,
                         traceparent=trace.decode() if isinstance(trace, bytes) else trace)
            log("txn %d (%s): %s", msg["txn"], msg["payment_id"],
                "%s applied" % reply["decision"] if "decision" in reply else
                "voted %s%s" % (reply["vote"], ": " + reply["reason"] if "reason" in reply
                                else ""))
        except Refused as err:
            self.dead_letter(method, props, body, err)
        # Any other failure (broker, SQLite, a nacked publish) raises and
        # ends the process before the ack below: see "Failures" at the top.
        # Only now, with the state committed and the reply confirmed: if we
        # die before this line, the broker redelivers and we answer the same.
        self.ch.basic_ack(method.delivery_tag)

    def apply(self, msg_type, msg):
        reply = {"txn": msg["txn"], "participant": NAME}
        if msg_type == "txn.prepare":
            yes, reason, detail = self.store.step(self.store.prepare, msg,
                                                  self.blocklist.current())
            reply["vote"] = "yes" if yes else "no"
            if not yes:
                reply["reason"], reply["detail"] = reason, detail
        else:
            commit = msg_type == "txn.commit"
            self.store.step(self.store.commit if commit else self.store.abort, msg)
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

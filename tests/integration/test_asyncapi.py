#!/usr/bin/env python3
"""docs/asyncapi.yaml against real traffic.

The document and the JSON Schemas it references are loaded exactly as
written (python3-yaml; every $ref resolved, into the schema files too),
every schema is checked as a schema, and the schemas are shown to refuse
known-bad bodies. Then a real deployment (coordinator, both ledger shards,
risk) runs with RabbitMQ's firehose tracer on its vhost: a capture queue
bound to amq.rabbitmq.trace gets a copy of every message published in the
vhost, on every exchange, the default one included, which is the only way
to see votes and acks (they go through the default exchange straight into
the coordinator's reply queue, which no one else may consume). The test
drives committed, aborted (by a ledger and by risk), rejected, duplicate,
conflicting, bad (dead-lettered) and in-doubt (status query) payments and a
prepare carrying a traceparent (which the participant must copy), and
validates every captured message: its body against the schema its AMQP
type selects, its properties and headers against the document, and its
exchange and routing key against the document's channels. A message type
the document does not describe fails the test, and every message the
document describes must have been seen.
"""
import decimal
import json
import os
import re
import time
import unittest
import uuid

import pika

from harness import (COORDINATOR_USER, PaytxTestCase, accounts_on, main, participant_user,
                     signed_props, unbatch)

try:
    import jsonschema
    import yaml
except ImportError as e:  # scripts/install-deps.sh installs both from Debian
    raise SystemExit("missing Python module: %s (python3-jsonschema, python3-yaml)" % e)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DOCS = os.path.normpath(os.path.join(ROOT, "docs"))
ASYNCAPI = os.path.join(DOCS, "asyncapi.yaml")
SCHEMA_DIR = os.path.join(DOCS, "schema")
Validator = jsonschema.Draft7Validator  # the schemas' $schema (AsyncAPI 2.6 takes draft-07)

MESSAGE_MAX = 65536   # PAYTX_MESSAGE_MAX
DEPTH_MAX = 16        # PAYTX_JSON_DEPTH_MAX


# -- loading the document -----------------------------------------------------
class Document:
    """docs/asyncapi.yaml with every $ref replaced by what it points to.
    files: every file read, so the test can tell an unreferenced schema."""

    def __init__(self, path=ASYNCAPI):
        self.files = {}
        self.raw = self._load(path)
        self.spec = self._resolve(self.raw, path, ())

    def _load(self, path):
        path = os.path.normpath(path)
        if path not in self.files:
            with open(path, encoding="utf-8") as f:
                self.files[path] = (json.load(f) if path.endswith(".json")
                                    else yaml.safe_load(f))
        return self.files[path]

    @staticmethod
    def _pointer(doc, fragment):
        node = doc
        for part in fragment.lstrip("/").split("/") if fragment else []:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _resolve(self, node, base, seen):
        if isinstance(node, list):
            return [self._resolve(v, base, seen) for v in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise AssertionError("cyclic $ref %s" % ref)
            target, _, fragment = ref.partition("#")
            path = os.path.join(os.path.dirname(base), target) if target else base
            found = self._pointer(self._load(path), fragment)
            # draft-07 and AsyncAPI ignore a $ref's siblings: so do we
            return self._resolve(found, os.path.normpath(path), seen + (ref,))
        return {k: self._resolve(v, base, seen) for k, v in node.items()}

    def messages(self):
        """component key (txnPrepare, ...) -> resolved message object."""
        return dict(self.spec["components"]["messages"])

    def message(self, name):
        """The message named name (its AMQP type, or dead-letter), or for a
        type with one message per direction (txn.batch) the one whose
        component key is name."""
        msgs = self.messages()
        if name in msgs:
            return msgs[name]
        found = [m for m in msgs.values() if m["name"] == name]
        if len(found) != 1:
            raise AssertionError("%d messages named %s" % (len(found), name))
        return found[0]

    def channel_messages(self, channel):
        """name -> component key of the messages a channel's operations
        carry (from the document as written, where each is a $ref)."""
        out = {}
        for op in ("publish", "subscribe"):
            msg = self.raw["channels"][channel].get(op, {}).get("message")
            for ref in (msg.get("oneOf", [msg]) if msg else []):
                key = ref["$ref"].rpartition("/")[2]
                name = self.messages()[key]["name"]
                if name in out:
                    raise AssertionError("two %s messages on channel %s" % (name, channel))
                out[name] = key
        return out


def strict_json(body):
    """The body as src/lib/strict_json.c reads it: size, UTF-8, no duplicate
    keys, no NaN/Infinity, depth; decimals as Decimal so that 1.0 is not an
    integer (json-c types it as a double, which message.c refuses)."""
    if len(body) > MESSAGE_MAX:
        raise ValueError("body over %d bytes" % MESSAGE_MAX)

    def pairs(items):
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key")
        return dict(items)

    def constant(name):
        raise ValueError("%s is not JSON" % name)

    value = json.loads(body.decode("utf-8"), object_pairs_hook=pairs,
                       parse_float=decimal.Decimal, parse_constant=constant)

    def depth(v):
        kids = v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()
        return 1 + max((depth(k) for k in kids), default=0)
    if depth(value) > DEPTH_MAX:
        raise ValueError("nested deeper than %d" % DEPTH_MAX)
    return value


def problems(schema, instance):
    return sorted("%s: %s" % ("/".join(map(str, e.absolute_path)) or "(root)", e.message)
                  for e in Validator(schema).iter_errors(instance))


# -- the document on its own ----------------------------------------------------
class DocumentAlone(unittest.TestCase):
    """Checks that need no services."""

    @classmethod
    def setUpClass(cls):
        cls.doc = Document()
        cls.msgs = cls.doc.messages()

    def test_document_is_asyncapi_2_6_over_amqp_0_9_1(self):
        spec = self.doc.spec
        self.assertEqual(spec["asyncapi"], "2.6.0")
        for s in spec["servers"].values():
            self.assertIn(s["protocol"], ("amqp", "amqps"))
            self.assertEqual(s["protocolVersion"], "0-9-1")
        exchanges = {c["bindings"]["amqp"]["exchange"]["name"]: c["bindings"]["amqp"]["exchange"]
                     ["type"] for c in spec["channels"].values()
                     if "exchange" in c["bindings"]["amqp"]}
        self.assertEqual(exchanges, {"paytx.submit": "fanout", "paytx.participants": "direct",
                                     "paytx.events": "topic", "paytx.dlx": "fanout",
                                     "paytx.balance": "fanout"})

    def test_every_schema_is_a_valid_schema(self):
        for path, content in self.doc.files.items():
            if path.endswith(".json"):
                self.assertEqual(content.get("$schema"), "http://json-schema.org/draft-07/schema#",
                                 path)
                Validator.check_schema(content)
        for name, m in self.msgs.items():
            for part in ("payload", "headers", "x-amqp-properties"):
                with self.subTest(message=name, part=part):
                    self.assertIn(part, m)
                    Validator.check_schema(m[part])

    def test_every_schema_file_is_referenced(self):
        on_disk = {os.path.join(SCHEMA_DIR, f) for f in os.listdir(SCHEMA_DIR)}
        read = {p for p in self.doc.files if p.endswith(".json")}
        self.assertEqual(on_disk, read, "schema files the document does not reference")

    def test_shared_definitions_are_the_same_in_every_file(self):
        seen = {}
        for path, content in self.doc.files.items():
            for name, d in content.get("definitions", {}).items():
                first = seen.setdefault(name, (path, d))
                self.assertEqual(first[1], d, "definition %s differs between %s and %s"
                                 % (name, first[0], path))

    def test_each_amqp_type_has_exactly_one_message_per_channel(self):
        types = [m["bindings"]["amqp"]["messageType"] for m in self.msgs.values()
                 if "bindings" in m]
        # txn.batch goes both ways: one message (and schema) per direction
        self.assertEqual(sorted(types), sorted(list(set(types)) + ["txn.batch"]))
        for channel in self.doc.spec["channels"]:
            self.doc.channel_messages(channel)   # raises on two of one name
        self.assertEqual(self.doc.channel_messages("{participant}")["txn.batch"],
                         "txnBatchRequests")
        self.assertEqual(self.doc.channel_messages("paytx.reply.{coordinatorId}")["txn.batch"],
                         "txnBatchReplies")
        # the names src/lib/message.c gives the AMQP type property
        with open(os.path.join(ROOT, "src", "lib", "message.c"), encoding="utf-8") as f:
            names = set(re.findall(r'\[PAYTX_MSG_[A-Z_]+\] = "([a-z.]+)"', f.read())) - {"unknown"}
        self.assertEqual(set(types), names)
        for m in self.msgs.values():
            if "bindings" in m:
                self.assertEqual(m["name"], m["bindings"]["amqp"]["messageType"])

    def test_dead_letter_codes_are_the_error_codes(self):
        with open(os.path.join(ROOT, "src", "lib", "error.c"), encoding="utf-8") as f:
            codes = set(re.findall(r'\] = \{ "([a-z_]+)"', f.read())) - {"ok"}
        enum = self.doc.message("dead-letter")["headers"]["properties"]["x-paytx-error-code"]["enum"]
        self.assertEqual(set(enum), codes)

    def test_examples_are_valid(self):
        n = 0
        for name, m in self.msgs.items():
            for ex in m.get("examples", []):
                n += 1
                self.assertEqual(problems(m["payload"], ex["payload"]), [], (name, ex["name"]))
        self.assertGreaterEqual(n, 3)

    def test_schemas_refuse_known_bad_bodies(self):
        ok_submit = {"payment_id": "p-1", "from": "alice", "to": "bob", "amount": 5,
                     "currency": "EUR"}
        leg = {"account": "a", "amount": -5, "currency": "EUR"}
        legs = [leg, dict(leg, account="b", amount=5)]
        ok_prepare = {"txn": 7, "payment_id": "p-1", "legs": legs, "deadline_ms": 1}
        ok_outcome = {"payment_id": "p-1", "status": "aborted", "reason": "timeout",
                      "detail": "", "txn": 7, "submitted_at_ms": 1, "finished_at_ms": 2}
        tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        prepare_e = {"type": "txn.prepare", "correlation_id": "ab.1", "traceparent": tp,
                     "body": ok_prepare}
        commit_e = {"type": "txn.commit", "correlation_id": "ab.2",
                    "body": {"txn": 7, "payment_id": "p-1"}}
        vote_e = {"type": "txn.vote", "correlation_id": "ab.1", "traceparent": tp,
                  "body": {"txn": 7, "participant": "risk", "vote": "yes"}}
        ack_e = {"type": "txn.ack", "body": {"txn": 7, "participant": "risk",
                                             "decision": "commit"}}
        good = [
            ("payment.submit", ok_submit),
            ("payment.submit", {"payment_id": "p-1", "legs": legs, "metadata": {"k": [1]}}),
            ("txn.prepare", ok_prepare),
            ("txn.vote", {"txn": 7, "participant": "risk", "vote": "yes"}),
            ("txn.vote", {"txn": 7, "participant": "risk", "vote": "yes", "reason": ""}),
            ("txn.vote", {"txn": 7, "participant": "risk", "vote": "no", "reason": "x"}),
            ("txn.ack", {"txn": 7, "participant": "risk", "decision": "abort"}),
            ("payment.outcome", ok_outcome),
            ("payment.outcome", dict(ok_outcome, payment_id="", status="rejected", txn=0)),
            ("balance.query", {"account": "alice"}),
            ("balance.result", {"account": "alice", "currency": "EUR", "balance": -5,
                                "held": 0, "version": 3, "external": True,
                                "source": "ledger"}),
            ("balance.result", {"error": "invalid_request"}),
            ("txnBatchRequests", {"entries": [prepare_e, commit_e]}),
            ("txnBatchRequests", {"entries": [dict(commit_e, correlation_id="")]}),
            ("txnBatchRequests", {"entries": [dict(commit_e, correlation_id=" !#[]~" * 21
                                                   + "x")]}),   # 127, the odd ones
            ("txnBatchRequests", {"entries": [prepare_e] * 256}),
            ("txnBatchReplies", {"entries": [vote_e, ack_e]}),
            ("txnBatchReplies", {"entries": [dict(vote_e, body={"txn": 7, "participant": "r",
                                                                "vote": "no", "reason": "x"})]}),
        ]
        for name, body in good:
            self.assertEqual(problems(self.doc.message(name)["payload"], body), [],
                             (name, body))
        big = 10 ** 15
        bad = [
            ("payment.submit", dict(ok_submit, payment_id="p\n"), "trailing newline in an id"),
            ("payment.submit", dict(ok_submit, payment_id="p" * 65), "id over 64"),
            ("payment.submit", dict(ok_submit, payment_id=""), "empty id"),
            ("payment.submit", dict(ok_submit, payment_id="p 1"), "space in an id"),
            ("payment.submit", dict(ok_submit, currency="EUR\n"), "trailing newline"),
            ("payment.submit", dict(ok_submit, currency="eur"), "lower-case currency"),
            ("payment.submit", dict(ok_submit, amount=0), "zero amount"),
            ("payment.submit", dict(ok_submit, amount=-5), "negative shorthand amount"),
            ("payment.submit", dict(ok_submit, amount=big + 1), "amount over 10^15"),
            ("payment.submit", dict(ok_submit, amount=decimal.Decimal("5.0")), "float"),
            ("payment.submit", dict(ok_submit, amount="5"), "string amount"),
            ("payment.submit", dict(ok_submit, memo="x"), "unknown field"),
            ("payment.submit", dict(ok_submit, legs=legs), "legs with the shorthand"),
            ("payment.submit", {k: v for k, v in ok_submit.items() if k != "to"}, "no to"),
            ("payment.submit", dict(ok_submit, metadata=[1]), "metadata not an object"),
            ("payment.submit", {"payment_id": "p", "legs": legs[:1]}, "one leg"),
            ("payment.submit", {"payment_id": "p", "legs": legs * 8 + legs[:1]}, "17 legs"),
            ("payment.submit", {"payment_id": "p", "legs": [dict(leg, amount=-big - 1),
                                                            legs[1]]}, "leg under -10^15"),
            ("payment.submit", {"payment_id": "p", "legs": [dict(leg, note=1), legs[1]]},
             "unknown leg field"),
            ("payment.submit", ["p"], "not an object"),
            ("txn.prepare", dict(ok_prepare, txn=0), "txn 0"),
            ("txn.prepare", dict(ok_prepare, txn=2 ** 63), "txn over int64"),
            ("txn.prepare", dict(ok_prepare, legs=[]), "no legs"),
            ("txn.prepare", dict(ok_prepare, deadline_ms=-1), "negative deadline"),
            ("txn.prepare", {k: v for k, v in ok_prepare.items() if k != "deadline_ms"},
             "no deadline"),
            ("txn.vote", {"txn": 7, "participant": "risk", "vote": "no"}, "no without reason"),
            ("txn.vote", {"txn": 7, "participant": "risk", "vote": "no", "reason": ""},
             "no with an empty reason"),
            ("txn.vote", {"txn": 7, "participant": "risk", "vote": "yes", "reason": "x"},
             "yes with a reason"),
            ("txn.vote", {"txn": 7, "participant": "risk", "vote": "no", "reason": "r" * 40},
             "reason over 39"),
            ("txn.vote", {"txn": 7, "participant": "risk", "vote": "no", "reason": "a\u0000"},
             "NUL in text"),
            ("txn.vote", {"txn": 7, "participant": "risk", "vote": "maybe"}, "bad vote"),
            ("txn.commit", {"txn": 7, "payment_id": "p", "legs": legs}, "unknown field"),
            ("txn.abort", {"txn": 7}, "no payment_id"),
            ("txn.ack", {"txn": 7, "participant": "risk", "decision": "yes"}, "bad decision"),
            ("txn.status", {"txn": 7}, "no participant"),
            ("payment.outcome", dict(ok_outcome, status="committed"), "committed with a reason"),
            ("payment.outcome", dict(ok_outcome, reason=""), "aborted without a reason"),
            ("payment.outcome", dict(ok_outcome, payment_id=""), "aborted without payment_id"),
            ("payment.outcome", dict(ok_outcome, detail="d" * 256), "detail over 255"),
            ("payment.outcome", dict(ok_outcome, status="pending"), "unknown status"),
            ("payment.outcome", {k: v for k, v in ok_outcome.items() if k != "txn"}, "no txn"),
            ("balance.query", {"acct": "alice"}, "no account"),
            ("balance.query", {"account": "a b"}, "bad account id"),
            ("balance.result", {"account": "alice", "error": "no_idea"}, "unknown error code"),
            ("balance.result", {"account": "alice", "currency": "EUR", "balance": 1,
                                "held": -1, "version": 1, "external": False,
                                "source": "cache"}, "negative held"),
            ("balance.result", {"account": "alice", "currency": "EUR", "balance": 1,
                                "held": 0, "version": 1, "external": False,
                                "source": "memory"}, "unknown source"),
            ("balance.result", {"account": "alice", "balance": 1, "error": "not_found"},
             "balance and error"),
            ("txnBatchRequests", {"entries": []}, "no entries"),
            ("txnBatchRequests", {"entries": [commit_e] * 257}, "257 entries"),
            ("txnBatchRequests", {}, "no entries field"),
            ("txnBatchRequests", {"entries": [commit_e], "n": 1}, "unknown field"),
            ("txnBatchRequests", {"entries": commit_e}, "entries not an array"),
            ("txnBatchRequests", {"entries": [[commit_e]]}, "an entry not an object"),
            ("txnBatchRequests", {"entries": [vote_e]}, "a vote to a participant"),
            ("txnBatchRequests", {"entries": [dict(commit_e, type="txn.status")]},
             "a status query in a batch"),
            ("txnBatchRequests", {"entries": [dict(commit_e, type="txn.batch")]},
             "a batch in a batch"),
            ("txnBatchRequests", {"entries": [{"type": "txn.commit"}]}, "no body"),
            ("txnBatchRequests", {"entries": [{"body": commit_e["body"]}]}, "no type"),
            ("txnBatchRequests", {"entries": [dict(commit_e, reply_to="x")]},
             "unknown entry field"),
            ("txnBatchRequests", {"entries": [commit_e, dict(commit_e, body={
                "payment_id": "p-1"})]}, "a body without txn"),
            ("txnBatchRequests", {"entries": [dict(prepare_e, body=dict(ok_prepare, txn=0))]},
             "txn 0 in a prepare"),
            ("txnBatchRequests", {"entries": [dict(prepare_e, body=commit_e["body"])]},
             "a prepare with a decision's body"),
            ("txnBatchRequests", {"entries": [dict(commit_e, body=ok_prepare)]},
             "a commit with a prepare's body"),
            ("txnBatchRequests", {"entries": [dict(commit_e, body="{}")]},
             "a body as a string"),
            ("txnBatchRequests", {"entries": [dict(commit_e, correlation_id='a"b')]},
             "a quote in a correlation_id"),
            ("txnBatchRequests", {"entries": [dict(commit_e, correlation_id="a\\b")]},
             "a backslash in a correlation_id"),
            ("txnBatchRequests", {"entries": [dict(commit_e, correlation_id="c" * 128)]},
             "a correlation_id over 127"),
            ("txnBatchRequests", {"entries": [dict(commit_e, correlation_id="c\n")]},
             "a trailing newline in a correlation_id"),
            ("txnBatchRequests", {"entries": [dict(commit_e, correlation_id="caf\u00e9")]},
             "non-ASCII in a correlation_id"),
            ("txnBatchRequests", {"entries": [dict(commit_e, correlation_id=7)]},
             "a number as correlation_id"),
            ("txnBatchRequests", {"entries": [dict(prepare_e, traceparent=tp.upper())]},
             "an upper-case traceparent"),
            ("txnBatchRequests", {"entries": [dict(prepare_e, traceparent=tp + "\n")]},
             "a trailing newline in a traceparent"),
            ("txnBatchRequests", {"entries": [dict(prepare_e, traceparent=tp[:-1])]},
             "a short traceparent"),
            ("txnBatchReplies", {"entries": [prepare_e]}, "a prepare to a coordinator"),
            ("txnBatchReplies", {"entries": [commit_e]}, "a commit to a coordinator"),
            ("txnBatchReplies", {"entries": [dict(vote_e, body={"txn": 7, "participant": "r",
                                                                "vote": "no"})]},
             "a no vote without reason"),
            ("txnBatchReplies", {"entries": [dict(ack_e, body=vote_e["body"])]},
             "an ack with a vote's body"),
            ("txnBatchReplies", {"entries": [ack_e] * 257}, "257 replies"),
        ]
        for name, body, why in bad:
            with self.subTest(message=name, why=why):
                self.assertNotEqual(problems(self.doc.message(name)["payload"], body), [])

    def test_reader_refuses_what_strict_json_refuses(self):
        for body in (b'{"a":1,"a":2}', b'{"a":NaN}', b'{"a":"\xc0\xaf"}',
                     b'[' * 17 + b']' * 17, b' ' * (MESSAGE_MAX + 1)):
            with self.subTest(body=body[:20]):
                self.assertRaises(ValueError, strict_json, body)
        self.assertEqual(strict_json(b'{"a":1.0}'), {"a": decimal.Decimal("1.0")})


# -- the document against real traffic ------------------------------------------
class Traffic(PaytxTestCase):
    start_services = False   # tracing must be on before the first message

    def setUp(self):
        super().setUp()
        self.doc = Document()
        self.msgs = self.doc.messages()
        self.entry_types = {}   # (channel, type) -> entries of that type seen in batches
        self.d._ctl("trace_on", "-p", self.d.vhost)
        self.capture = self.d.admin_ch.queue_declare("asyncapi.capture").method.queue
        self.d.admin_ch.queue_bind(self.capture, "amq.rabbitmq.trace", "publish.#")
        # correlation or message ids of what the test sends to be refused:
        self.bad = set()            # for its shape, which the document must refuse too
        self.refused_valid = set()  # for the system's state (a payment_id conflict)

    # -- driving the deployment ----------------------------------------------
    def start(self):
        self.d.start_risk()   # creates and migrates every database
        for s in self.d.shards:
            self.d.start_ledger(s)
        self.d.start_cache()  # every kind of participant, and the balance queries
        self.d.start_coordinator(PAYTX_PARTICIPANTS="risk,cache")
        for q in self.d.shards + ["risk", "cache", "paytx.balance", "paytx.submit"]:
            self.d.wait_consumers(q, 1)

    def pay(self, body):
        return self.d.pay_and_wait(body)

    def refused(self, body, valid=False, **props):
        """Submit body (bytes or JSON), expected to be rejected and
        dead-lettered; unless valid, the document must refuse it too."""
        corr = self.d.submit(body, **props)
        (self.refused_valid if valid else self.bad).add(corr)
        out, _ = self.d.wait_reply(corr)
        self.assertEqual(out["status"], "rejected", out)
        return out

    def in_doubt_payment(self, a, b):
        """A commit logged by a coordinator that dies before sending it: the
        participants hold their yes votes and ask (txn.status); the
        restarted coordinator answers with the decision."""
        self.d.wait_outcomes_marked()
        self.d.stop("coordinator")
        self.d.start_coordinator(PAYTX_PARTICIPANTS="risk",
                                 PAYTX_CRASH_AT="coordinator.after_log_commit@2")
        corr = self.d.submit({"payment_id": "in-doubt-1", "from": a, "to": b, "amount": 7,
                              "currency": "EUR"})
        self.d.wait_for(lambda: not self.d.alive("coordinator"), what="coordinator crash")
        self.d.stop("coordinator")
        self.assertEqual(self.d.query("coord", "SELECT state FROM payments WHERE "
                                      "payment_id = 'in-doubt-1'"), [("committing",)])
        self.d.wait_for(lambda: self.d.admin_ch.queue_declare("paytx.status", passive=True)
                        .method.message_count >= 3, what="a status query from each participant")
        self.d.start_coordinator(PAYTX_PARTICIPANTS="risk")
        out, _ = self.d.wait_reply(corr)
        self.assertEqual(out["status"], "committed", out)

    def forged_commit(self):
        """A commit without a signature, straight into ledger.0's queue."""
        msg_id = "forger-%d" % (os.getpid())
        self.bad.add(msg_id + "-1")
        self.d.admin_ch.basic_publish(
            "paytx.participants", "ledger.0", b'{"txn":1,"payment_id":"forged"}',
            pika.BasicProperties(content_type="application/json", type="txn.commit",
                                 message_id=msg_id + "-1", timestamp=int(time.time()),
                                 reply_to="paytx.reply.forger"))

    def traced_exchange(self):
        """A signed prepare and abort carrying a traceparent, sent as a
        coordinator would (the C coordinator sets none today): ledger.0's
        vote and ack must copy it. Returns the traceparent."""
        reply = self.d.admin_ch.queue_declare("paytx.reply.asyncapi-tracer").method.queue
        tp = "00-%s-%s-01" % (uuid.uuid4().hex, uuid.uuid4().hex[:16])
        txn = 9000000000 + os.getpid()
        leg = {"account": "nobody-traced", "amount": 5, "currency": "EUR"}
        for msg_type, body in (
                ("txn.prepare", {"txn": txn, "payment_id": "traced-1", "legs": [leg],
                                 "deadline_ms": int(time.time() * 1000) + 5000}),
                ("txn.abort", {"txn": txn, "payment_id": "traced-1"})):
            raw = json.dumps(body, separators=(",", ":")).encode()
            self.d.admin_ch.basic_publish("paytx.participants", "ledger.0", raw, signed_props(
                msg_type, raw, content_type="application/json", delivery_mode=1,
                reply_to=reply, headers={"traceparent": tp}))
        got = []

        def two_replies():   # alone or as one txn.batch
            method, props, body = self.d.admin_ch.basic_get(reply, auto_ack=True)
            if method:
                got.extend((p.type, (p.headers or {}).get("traceparent"))
                           for p, _ in unbatch(props, body))
            return len(got) == 2
        self.d.wait_for(two_replies, what="the vote and the ack")
        self.assertEqual(sorted(got), [("txn.ack", tp), ("txn.vote", tp)])
        return tp

    # -- reading the capture ------------------------------------------------------
    def captured(self):
        out = []
        while True:
            method, props, body = self.d.admin_ch.basic_get(self.capture, auto_ack=True)
            if method is None:
                return out
            h = props.headers
            out.append({"exchange": h["exchange_name"], "keys": h["routing_keys"],
                        "user": h["user"], "props": dict(h["properties"]), "body": body})

    def channel_of(self, m):
        ex, key = m["exchange"], m["keys"][0]
        if ex == "":
            if key == "paytx.status":
                return "paytx.status"
            return "paytx.reply.{coordinatorId}" if key.startswith("paytx.reply.") else "{replyTo}"
        return {"paytx.submit": "paytx.submit", "paytx.participants": "{participant}",
                "paytx.events": "payment.{status}", "paytx.dlx": "paytx.dlx",
                "paytx.balance": "paytx.balance"}.get(ex)

    def check(self, m):
        """Problems of one captured message against the document, and the
        name of the message it was checked as."""
        props = dict(m["props"])
        headers = props.pop("headers", None) or {}
        channel = self.channel_of(m)
        if channel is None:
            return props.get("type"), ["exchange %r is not described" % m["exchange"]]
        if channel == "paytx.dlx":
            name = "dead-letter"
        else:
            # a submit or a balance query may leave its type out
            name = props.get("type") or {"paytx.submit": "payment.submit",
                                         "paytx.balance": "balance.query"}.get(channel)
        if name not in {m["name"] for m in self.msgs.values()}:
            return name, ["AMQP type %r is not described by the document" % name]
        key = self.doc.channel_messages(channel).get(name)
        if key is None:
            return name, ["%s is not a message of channel %s" % (name, channel)]
        spec = self.msgs[key]
        found = []
        found += ["property " + p for p in problems(spec["x-amqp-properties"], props)]
        found += ["header " + p for p in problems(spec["headers"], headers)]
        if name == "dead-letter":
            if headers.get("x-paytx-origin-queue") != m["keys"][0]:
                found.append("routing key is not the origin queue")
            return name, found
        try:
            body = strict_json(m["body"])
        except ValueError as e:
            return name, found + ["body: %s" % e]
        found += ["body " + p for p in problems(spec["payload"], body)]
        if name == "txn.batch":
            found += self.check_entries(channel, body)
        if channel == "payment.{status}" and m["keys"][0] != "payment.%s" % body.get("status"):
            found.append("event routing key %s for status %s" % (m["keys"][0], body["status"]))
        if channel == "{participant}" and m["keys"][0] not in self.d.shards + ["risk", "cache"]:
            found.append("routing key %s names no participant" % m["keys"][0])
        return name, found

    def check_entries(self, channel, body):
        """Each entry's body against its own type's schema, on its own: the
        batch schema embeds them, this shows it embeds the right ones."""
        found = []
        singles = set(self.doc.channel_messages(channel)) - {"txn.batch"}
        entries = body.get("entries") if isinstance(body, dict) else None
        for i, e in enumerate(entries if isinstance(entries, list) else []):
            t = e.get("type") if isinstance(e, dict) else None
            if t not in singles:
                found.append("entries[%d]: type %r is not sent alone on %s" % (i, t, channel))
                continue
            found += ["entries[%d].body as %s: %s" % (i, t, p)
                      for p in problems(self.doc.message(t)["payload"], e.get("body"))]
            self.entry_types[(channel, t)] = self.entry_types.get((channel, t), 0) + 1
        return found

    @staticmethod
    def carried(m):
        """(type, traceparent) of each protocol message a captured message
        carries: itself, or each entry of a txn.batch."""
        if m["props"].get("type") != "txn.batch" or m["exchange"] == "paytx.dlx":
            return [(m["props"].get("type"), (m["props"].get("headers") or {}).get("traceparent"))]
        return [(e["type"], e.get("traceparent")) for e in json.loads(m["body"])["entries"]]

    def burst(self, a, b, c, n=40):
        """n payments in flight at once: the coordinator has several requests
        per participant per loop iteration and sends txn.batch, and the
        participants answer with txn.batch."""
        over = {i for i in range(n) if i % 5 == 0}   # over a's per-payment limit: aborts
        corrs = [self.d.submit({"payment_id": "burst-%d" % i, "from": a, "to": (b, c)[i % 2],
                                "amount": 6000 if i in over else 1 + i, "currency": "EUR"})
                 for i in range(n)]
        for i, corr in enumerate(corrs):
            out = self.d.wait_reply(corr, timeout=60)[0]
            self.assertEqual((out["status"], out["reason"]), ("aborted", "limit_exceeded")
                             if i in over else ("committed", ""), out)

    def ids(self, m):
        return {m["props"].get("correlation_id"), m["props"].get("message_id")} - {None}

    def sent_to_be_refused(self, m):
        daemons = {COORDINATOR_USER} | {participant_user(p)
                                        for p in self.d.shards + ["risk", "cache"]}
        return m["user"] not in daemons and bool(self.ids(m) & self.bad)

    # -- the test -----------------------------------------------------------------
    def test_every_message_of_a_real_run_matches_the_document(self):
        self.start()
        a, b = self.alice_and_bob(funds=100000)
        c = accounts_on("ledger.0", "carol")[0]
        self.d.account(c)
        self.d.ctl("limit", "set", a, "EUR", "--per-payment", "5000")

        legs = {"payment_id": "legs-1", "metadata": {"order": 1, "note": "x"}, "legs": [
            {"account": a, "amount": -300, "currency": "EUR"},
            {"account": b, "amount": 200, "currency": "EUR"},
            {"account": c, "amount": 100, "currency": "EUR"}]}
        self.assertEqual(self.pay(legs)["status"], "committed")
        self.assertEqual(self.pay(legs)["status"], "committed")        # duplicate
        self.burst(a, b, c)
        out = self.refused(dict(legs, metadata={"order": 2}), valid=True)  # same id, other content
        self.assertEqual(out["reason"], "payment_id_conflict")
        out = self.pay({"payment_id": "poor-1", "from": b, "to": a, "amount": 4000,
                        "currency": "EUR"})
        self.assertEqual((out["status"], out["reason"]), ("aborted", "insufficient_funds"))
        out = self.pay({"payment_id": "big-1", "from": a, "to": b, "amount": 6000,
                        "currency": "EUR"})
        self.assertEqual((out["status"], out["reason"]), ("aborted", "limit_exceeded"))

        self.refused(b'{"payment_id": "bad-1", ')
        self.refused({"payment_id": "bad-2", "from": a, "to": b, "amount": 1.0,
                      "currency": "EUR"})
        self.refused({"payment_id": "bad-3", "from": a, "to": b, "amount": 1,
                      "currency": "EUR", "memo": "unknown field"})
        out = self.refused({"from": a, "to": b, "amount": 1, "currency": "EUR"})
        self.assertEqual((out["payment_id"], out["reason"]), ("", "missing_field"))
        self.refused({"payment_id": "bad-4", "from": a, "to": b, "amount": 1,
                      "currency": "EUR"}, msg_type="txn.vote")
        self.forged_commit()
        self.assertEqual(self.d.balance_query(b)["account"], b)
        self.assertEqual(self.d.balance_query("ghost-1")["error"], "not_found")
        tp = self.traced_exchange()
        # A client's trace follows its payment: prepares, decisions and the
        # outcome carry the submit's traceparent, and the replies copy it.
        client_tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        corr = self.d.submit({"payment_id": "traced-1", "from": a, "to": b, "amount": 7,
                              "currency": "EUR"}, headers={"traceparent": client_tp})
        self.assertEqual(self.d.wait_reply(corr)[0]["status"], "committed")
        self.in_doubt_payment(a, b)
        self.d.wait_for(lambda: self.d.dead_count() >= 7, what="every dead letter")
        self.d.check_invariants(self)

        seen, failures = {}, []
        dead_of = set()
        messages = self.captured()
        for m in messages:
            name, found = self.check(m)
            channel = self.channel_of(m)
            if name == "dead-letter":
                dead_of |= self.ids(m)
            if self.sent_to_be_refused(m) and name != "dead-letter":
                if not found:
                    failures.append("a message sent to be refused passes the document: %r"
                                    % m["body"])
                continue
            if found:
                failures.append("%s on %s %s from %s: %s" % (name, m["exchange"] or "(default)",
                                m["keys"], m["user"], "; ".join(found)))
            else:   # counted per message of the document (txn.batch: per direction)
                key = self.doc.channel_messages(channel)[name]
                seen[key] = seen.get(key, 0) + 1
        self.assertEqual(failures, [], "\n".join(failures[:20]))
        self.assertEqual((self.bad | self.refused_valid) - dead_of, set(),
                         "refused messages not dead-lettered")
        self.assertEqual(set(self.msgs) - set(seen), set(), "described but never seen")
        # and the batches carried every kind of protocol message between them
        self.assertEqual(set(self.entry_types), {
            ("{participant}", "txn.prepare"), ("{participant}", "txn.commit"),
            ("{participant}", "txn.abort"), ("paytx.reply.{coordinatorId}", "txn.vote"),
            ("paytx.reply.{coordinatorId}", "txn.ack")}, "entry types seen in batches")
        traced = {t for m in messages if m["user"] == participant_user("ledger.0")
                  for t, trace in self.carried(m) if trace == tp}
        self.assertEqual(traced, {"txn.vote", "txn.ack"}, "traceparent copied to replies")
        traced = {(m["user"] == COORDINATOR_USER, t) for m in messages
                  if m["exchange"] != "paytx.dlx"
                  for t, trace in self.carried(m) if trace == client_tp}
        self.assertEqual(traced, {(True, "txn.prepare"), (True, "txn.commit"),
                                  (True, "payment.outcome"), (False, "payment.submit"),
                                  (False, "txn.vote"), (False, "txn.ack")},
                         "a submit's traceparent on every message about its payment")
        print("validated %d captured messages: %s; in batches: %s"
              % (sum(seen.values()), seen, self.entry_types))


if __name__ == "__main__":
    main()

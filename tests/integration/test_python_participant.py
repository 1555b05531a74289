#!/usr/bin/env python3
"""A participant written in another language takes part in real payments.

examples/python/sanctions_participant.py (plain Python + pika, no paytx
code) runs as the participant "sanctions" on its own RabbitMQ user, next to
the C coordinator and two C ledger shards: the protocol in
docs/participants.md is all it needs."""
import contextlib
import json
import os
import re
import signal
import sqlite3
import sys
import time

import pika

from harness import PaytxTestCase, main, participant_user, sign, signed_props

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples",
                       "python", "sanctions_participant.py")
NAME = "sanctions"


class PythonParticipant(PaytxTestCase):

    # a long deadline: the restart test keeps a payment waiting for votes
    coord_env = {"PAYTX_PARTICIPANTS": NAME, "PAYTX_PREPARE_TIMEOUT_MS": 60000}

    def setUp(self):
        super().setUp()
        self.db = os.path.join(self.d.logdir, "sanctions.sqlite3")
        self.blockfile = os.path.join(self.d.logdir, "blocklist.txt")
        self.block("# accounts the sanctions participant refuses", "mallory-0")
        # as the harness does for the shards: declared before anyone starts
        self.d.admin_ch.queue_declare(NAME, durable=True, arguments=self.d.queue_args())
        self.d.admin_ch.queue_bind(NAME, "paytx.participants", NAME)
        self.start_python()
        self.alice_and_bob(1000)   # funding payments go through sanctions too

    def tearDown(self):
        if NAME in self.d.logs:
            self.assertNotIn("Traceback", self.d.log_text(NAME))

    def block(self, *lines):
        with open(self.blockfile, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    def start_python(self):
        self.d.start(NAME, [sys.executable, EXAMPLE],
                     PAYTX_AMQP_URL=self.d.role_url(participant_user(NAME)),
                     PAYTX_PARTICIPANT=NAME, SANCTIONS_DB=self.db,
                     SANCTIONS_BLOCKLIST_FILE=self.blockfile, PAYTX_STATUS_AFTER_MS=2000)
        self.d.wait_consumers(NAME, 1)

    def barrier(self, txn):
        c = sqlite3.connect(self.db)
        try:
            return c.execute("SELECT state, reason FROM barrier WHERE txn = ?",
                             (txn,)).fetchall()
        finally:
            c.close()

    def pay(self, pid, to=None, amount=100):
        return {"payment_id": pid, "from": self.a, "to": to or self.b, "amount": amount,
                "currency": "EUR"}

    def test_payment_commits_on_all_three(self):
        out = self.d.pay_and_wait(self.pay("py-1"))
        self.assertEqual(out["status"], "committed", out)
        self.assertEqual(self.d.balance(self.a), (900, 0))
        self.assertEqual(self.d.balance(self.b), (100, 0))
        self.d.wait_for(lambda: self.barrier(out["txn"]) == [("committed", None)],
                        what="sanctions applied the commit")
        self.assertIn("voted yes", self.d.log_text(NAME))
        self.assertEqual(self.d.dead_letters(), [])
        self.d.check_invariants(self)

    def test_blocklisted_account_aborts_with_its_reason(self):
        self.d.account("mallory-0")
        out = self.d.pay_and_wait(self.pay("py-sanctioned", to="mallory-0"))
        self.assertEqual(out["status"], "aborted", out)
        self.assertEqual(out["reason"], "sanctioned_party")
        self.assertIn("mallory-0", out["detail"])
        self.assertEqual(self.d.balance(self.a), (1000, 0))
        self.assertEqual(self.d.balance("mallory-0"), (0, 0))
        self.assertEqual(self.d.journal("mallory-0"), [])
        self.d.wait_for(lambda: self.barrier(out["txn"]) == [("aborted", "sanctioned_party")],
                        what="sanctions applied the abort")
        self.d.check_invariants(self)

    def test_restart_between_prepare_and_commit_keeps_the_promise(self):
        self.d.stop("ledger.1")               # its vote is missing: no decision yet
        corr = self.d.submit(self.pay("py-restart"))
        # its vote is confirmed by the broker when it logs it
        self.d.wait_for(lambda: "(py-restart): voted yes" in self.d.log_text(NAME),
                        what="sanctions voted yes")
        with contextlib.closing(sqlite3.connect(self.db)) as c:
            txn, = c.execute("SELECT txn FROM barrier WHERE payment_id = 'py-restart'").fetchone()
        self.assertEqual(self.barrier(txn), [("prepared", None)])
        # in doubt for PAYTX_STATUS_AFTER_MS: it asks the coordinators, which
        # have no decision to give yet (a bad signature would be dead-lettered)
        self.d.wait_for(lambda: "txn %d: reservation in doubt" % txn in self.d.log_text(NAME),
                        what="a status query")
        self.d.stop(NAME, signal.SIGKILL)     # after its vote, before any decision
        # While it is down its rules change: b is now sanctioned. A yes vote
        # is a promise, so the payment must still commit.
        self.block("mallory-0", self.b)
        self.d.start_ledger("ledger.1")       # its yes vote lets the coordinator decide
        self.d.wait_for(lambda: self.d.query("coord", "SELECT state FROM payments WHERE "
                                             "payment_id = 'py-restart'") == [("committing",)],
                        what="commit decided, waiting for sanctions")
        self.start_python()                   # the commit waited in its queue
        out, _ = self.d.wait_reply(corr)
        self.assertEqual(out["status"], "committed", out)
        self.assertEqual(self.barrier(txn), [("committed", None)])
        self.assertEqual(self.d.balance(self.b), (100, 0))
        # and a new payment to b is now refused
        out = self.d.pay_and_wait(self.pay("py-after"))
        self.assertEqual((out["status"], out["reason"]), ("aborted", "sanctioned_party"))
        self.assertEqual(self.d.dead_letters(), [])
        self.d.check_invariants(self)

    def test_forged_and_replayed_messages_are_dead_lettered_late_prepare_votes_no(self):
        out = self.d.pay_and_wait(self.pay("py-forge"))
        self.assertEqual(out["status"], "committed", out)
        # an unsigned commit for a txn it voted yes on, as the administrator
        body = json.dumps({"txn": out["txn"], "payment_id": "py-forge"}).encode()
        self.d.admin_ch.basic_publish("paytx.participants", NAME, body, pika.BasicProperties(
            type="txn.commit", message_id="forger-1", timestamp=int(time.time()),
            reply_to=self.d.reply_queue, content_type="application/json"))
        # a correctly signed abort (answered), then the very same message again
        body = json.dumps({"txn": 987654, "payment_id": "py-replay"}).encode()
        props = signed_props("txn.abort", body, reply_to=self.d.reply_queue)
        self.d.admin_ch.basic_publish("paytx.participants", NAME, body, props)
        self.d.admin_ch.basic_publish("paytx.participants", NAME, body, props)
        ack, ack_props = self.d.wait_reply(timeout=15)
        self.assertEqual(ack, {"txn": 987654, "participant": NAME, "decision": "abort"})
        self.assertEqual(ack_props.type, "txn.ack")
        # the abort overtook its prepare: the late prepare votes no
        body = json.dumps({"txn": 987654, "payment_id": "py-replay", "deadline_ms": 2 ** 62,
                           "legs": [{"account": self.a, "amount": -1, "currency": "EUR"}]})
        self.d.admin_ch.basic_publish("paytx.participants", NAME, body.encode(), signed_props(
            "txn.prepare", body.encode(), reply_to=self.d.reply_queue))
        vote, vote_props = self.d.wait_reply(timeout=15)
        self.assertEqual((vote_props.type, vote["vote"], vote["reason"]),
                         ("txn.vote", "no", "aborted"))
        self.d.wait_for(lambda: self.d.dead_count() >= 2, what="2 dead letters")
        dead = self.d.dead_letters()
        self.assertEqual([(p.headers["x-paytx-error-code"], p.headers["x-paytx-origin-queue"],
                           p.type) for p, _ in dead],
                         [("bad_signature", NAME, "txn.commit"), ("replayed", NAME, "txn.abort")])
        self.assertEqual(self.barrier(987654), [("aborted", None)])
        self.assertEqual(self.barrier(out["txn"]), [("committed", None)])
        self.d.check_invariants(self)

    # -- txn.batch ---------------------------------------------------------------

    def test_a_burst_of_concurrent_payments_reaches_it_in_batches(self):
        self.d.account("mallory-0")
        pids = ["py-burst-%d" % i for i in range(40)]
        corrs = {self.d.submit(self.pay(pid, to="mallory-0" if i % 8 == 0 else None,
                                        amount=10)): pid
                 for i, pid in enumerate(pids)}   # all in flight at once
        outs = {}
        for corr, pid in corrs.items():
            out, _ = self.d.wait_reply(corr, timeout=60)
            outs[pid] = out
        sanctioned = {pid for i, pid in enumerate(pids) if i % 8 == 0}
        for pid, out in outs.items():
            want = ("aborted", "sanctioned_party") if pid in sanctioned else ("committed", "")
            self.assertEqual((out["status"], out["reason"]), want, out)
        self.assertEqual(self.d.balance(self.a), (1000 - 10 * 35, 0))
        self.assertEqual(self.d.balance("mallory-0"), (0, 0))
        # Two or more requests for it in one loop iteration go as a txn.batch.
        batches = re.findall(r"txn\.batch #\d+: (\d+) entries", self.d.log_text(NAME))
        self.assertGreater(len(batches), 0, "no txn.batch reached the Python participant")
        self.assertTrue(all(int(n) >= 2 for n in batches), batches)
        for pid, out in outs.items():
            self.d.wait_for(lambda: self.barrier(out["txn"]) == [
                ("aborted", "sanctioned_party") if pid in sanctioned else ("committed", None)],
                what="sanctions applied the decision of %s" % pid)
        self.assertEqual(self.d.dead_letters(), [])
        self.d.check_invariants(self)

    def prepare(self, txn, amount=5, to=None):
        return {"txn": txn, "payment_id": "p-%d" % txn, "deadline_ms": 2 ** 62,
                "legs": [{"account": self.a, "amount": -amount, "currency": "EUR"},
                         {"account": to or self.b, "amount": amount, "currency": "EUR"}]}

    def deliver_batch(self, entries, reply_to=None, key=None):
        """One signed txn.batch of (type, body, correlation_id) to sanctions."""
        raw = json.dumps({"entries": [
            dict({"type": t, "body": b}, **({"correlation_id": c} if c else {}))
            for t, b, c in entries]}).encode()
        props = signed_props("txn.batch", raw, reply_to=reply_to or self.d.reply_queue,
                             **({"key": key} if key else {}))
        self.d.admin_ch.basic_publish("paytx.participants", NAME, raw, props)
        return raw, props

    def test_a_bad_batch_is_refused_whole(self):
        raw, props = self.deliver_batch([
            ("txn.prepare", self.prepare(700001), "c1"),
            ("txn.commit", {"payment_id": "p-700001"}, "c2"),   # no txn
        ])
        self.deliver_batch([("txn.vote", {"txn": 700002, "participant": "x", "vote": "yes"},
                             None)])
        self.deliver_batch([("txn.abort", {"txn": 700003, "payment_id": "p-700003"}, "c3")],
                           key="another key of enough length")
        self.d.wait_for(lambda: self.d.dead_count() >= 3, what="3 dead letters")
        dead = self.d.dead_letters()
        self.assertEqual([(p.type, p.headers["x-paytx-error-code"],
                           p.headers["x-paytx-error-text"], p.headers["x-paytx-origin-queue"])
                          for p, _ in dead], [
            ("txn.batch", "missing_field", "entries[1].body.txn: required", NAME),
            ("txn.batch", "unknown_message_type",
             "entries[0].type: must be txn.prepare, txn.commit or txn.abort", NAME),
            ("txn.batch", "bad_signature", "missing or bad x-paytx-signature", NAME)])
        # dead-lettered as it came, signature and all
        self.assertEqual(dead[0][1], raw)
        self.assertEqual(dead[0][0].headers["x-paytx-signature"],
                         props.headers["x-paytx-signature"])
        # no entry of a refused batch ran, and nothing answered them
        for txn in (700001, 700002, 700003):
            self.assertEqual(self.barrier(txn), [])
        with self.assertRaises(AssertionError):
            self.d.wait_reply("c1", timeout=1)

    def test_a_batch_is_answered_per_entry_and_an_impossible_entry_dead_lettered_alone(self):
        reply = self.d.admin_ch.queue_declare("paytx.reply.py-batch").method.queue
        self.deliver_batch([
            ("txn.prepare", self.prepare(700010), "c10"),
            ("txn.commit", {"txn": 700011, "payment_id": "p-700011"}, "c11"),  # never prepared
            ("txn.abort", {"txn": 700012, "payment_id": "p-700012"}, "c12"),  # before prepare
            ("txn.commit", {"txn": 700010, "payment_id": "p-700010"}, "c10b"),
            ("txn.prepare", self.prepare(700012), "c12b"),   # the abort overtook it
        ], reply_to=reply)
        got = []

        def replies():
            method, props, body = self.d.admin_ch.basic_get(reply, auto_ack=True)
            if method:
                got.append((props, body))
            return sum(1 if p.type != "txn.batch" else len(json.loads(b)["entries"])
                       for p, b in got) >= 4
        self.d.wait_for(replies, what="4 answers")
        for props, body in got:   # signed like every protocol message
            self.assertEqual(props.headers["x-paytx-signature"],
                             sign(props.type, body, message_id=props.message_id,
                                  timestamp=props.timestamp))
        self.assertEqual([p.type for p, _ in got], ["txn.batch"])   # answered as one batch
        entries = json.loads(got[0][1])["entries"]
        self.assertEqual([(e["type"], e["correlation_id"]) for e in entries],
                         [("txn.vote", "c10"), ("txn.ack", "c12"), ("txn.ack", "c10b"),
                          ("txn.vote", "c12b")])
        self.assertEqual(entries[0]["body"], {"txn": 700010, "participant": NAME, "vote": "yes"})
        self.assertEqual(entries[2]["body"],
                         {"txn": 700010, "participant": NAME, "decision": "commit"})
        self.assertEqual((entries[3]["body"]["vote"], entries[3]["body"]["reason"]),
                         ("no", "aborted"))
        self.assertEqual(self.barrier(700010), [("committed", None)])
        self.assertEqual(self.barrier(700011), [])
        self.assertEqual(self.barrier(700012), [("aborted", None)])
        props, body = self.d.dead_letters()[0]
        # the refused commit as it would have come alone
        self.assertEqual((props.type, props.correlation_id), ("txn.commit", "c11"))
        self.assertEqual(json.loads(body), {"txn": 700011, "payment_id": "p-700011"})
        self.assertEqual(props.headers["x-paytx-error-code"], "protocol_violation")
        self.assertEqual(props.headers["x-paytx-batch-entry"], 1)
        self.assertNotIn("x-paytx-signature", props.headers)

    def test_bad_batches_are_refused_with_the_c_sdks_codes_and_texts(self):
        """The same bad txn.batch bodies to a C participant (ledger.0) and to
        the Python one: the same error code, and the same text wherever the
        fault is in paytx's own rules rather than in JSON syntax."""
        commit = {"type": "txn.commit", "correlation_id": "e.1",
                  "body": {"txn": 700020, "payment_id": "p-700020"}}
        prep = {"type": "txn.prepare", "body": self.prepare(700021)}
        tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

        def with_body(entry, **fields):
            return dict(entry, body=dict(entry["body"], **fields))
        legs = prep["body"]["legs"]
        cases = [{"entries": [commit], "more": 1}, {}, {"entries": []},
                 {"entries": [commit] * 257}, {"entries": commit}, {"entries": [commit, 7]},
                 {"entries": [dict(commit, reply_to="x")]},
                 {"entries": [dict(commit, **{"bad key!": 1})]},
                 {"entries": [{"body": commit["body"]}]},
                 {"entries": [dict(commit, type=7)]},
                 {"entries": [dict(commit, type="txn.vote")]},
                 {"entries": [dict(commit, type="txn.batch")]},
                 {"entries": [dict(commit, correlation_id='a"b')]},
                 {"entries": [dict(commit, correlation_id="c" * 128)]},
                 {"entries": [dict(commit, correlation_id=1)]},
                 {"entries": [dict(commit, traceparent=tp.upper())]},
                 {"entries": [{"type": "txn.abort"}]},
                 {"entries": [dict(commit, body=[])]},
                 {"entries": [commit, dict(commit, body={"payment_id": "p"})]},
                 {"entries": [with_body(commit, txn=0)]},
                 {"entries": [with_body(commit, txn=2 ** 63)]},
                 {"entries": [with_body(commit, txn="1")]},
                 {"entries": [with_body(commit, txn=1.5)]},
                 {"entries": [with_body(commit, payment_id="p 1")]},
                 {"entries": [with_body(commit, legs=[])]},
                 {"entries": [with_body(commit, **{"bad key!": 1})]},
                 {"entries": [with_body(prep, legs=[])]},
                 {"entries": [with_body(prep, legs=legs * 9)]},
                 {"entries": [with_body(prep, legs={})]},
                 {"entries": [with_body(prep, legs=[legs[0], dict(legs[1], amount=0)])]},
                 {"entries": [with_body(prep, legs=[dict(legs[0], amount=10 ** 15 + 1)])]},
                 {"entries": [with_body(prep, legs=[dict(legs[0], currency="eur")])]},
                 {"entries": [with_body(prep, legs=[dict(legs[0], note=1)])]},
                 {"entries": [with_body(prep, legs=[7])]},
                 {"entries": [with_body(prep, deadline_ms=-1)]},
                 {"entries": [prep, {"type": "txn.prepare",
                                     "body": {k: v for k, v in prep["body"].items()
                                              if k != "deadline_ms"}}]}]
        raws = [json.dumps(c).encode() for c in cases]
        syntax = [b'{"entries": [', b"[]", b'{"entries": [], "entries": []}',
                  b'{"entries": [{"type": "txn.commit", "body": {"txn": NaN}}]}',
                  b'{"entries": ["\xff"]}']
        for queue in ("ledger.0", NAME):
            for raw in raws + syntax:
                self.d.admin_ch.basic_publish("paytx.participants", queue, raw, signed_props(
                    "txn.batch", raw, reply_to=self.d.reply_queue))
        n = len(raws) + len(syntax)
        self.d.wait_for(lambda: self.d.dead_count() >= 2 * n, what="%d dead letters" % (2 * n))
        got = {"ledger.0": [], NAME: []}
        for props, body in self.d.dead_letters():
            got[props.headers["x-paytx-origin-queue"]].append(
                (body, props.headers["x-paytx-error-code"], props.headers["x-paytx-error-text"]))
        self.assertEqual([b for b, _, _ in got[NAME]], raws + syntax)
        self.assertEqual([b for b, _, _ in got["ledger.0"]], raws + syntax)
        for c_side, py_side in zip(got["ledger.0"][:len(raws)], got[NAME][:len(raws)]):
            with self.subTest(body=c_side[0][:120]):
                self.assertEqual(py_side[1:], c_side[1:])
        for c_side, py_side in zip(got["ledger.0"][len(raws):], got[NAME][len(raws):]):
            with self.subTest(body=c_side[0][:120]):
                self.assertEqual(py_side[1], c_side[1])
        for txn in (700020, 700021):
            self.assertEqual(self.barrier(txn), [])


class PythonParticipantOnQuorumQueues(PythonParticipant):
    """The same with PAYTX_QUEUE_TYPE=quorum: the example declares its queue
    with the arguments the coordinator uses, or one of them is refused."""

    queue_type = "quorum"


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The participant protocol under duplicates and reordering, driven with
correctly signed messages straight to a ledger shard's queue."""
import json
import time

import pika

from harness import PaytxTestCase, accounts_on, main, signed_props


class Protocol(PaytxTestCase):

    start_services = False  # the test plays the coordinator

    def setUp(self):
        super().setUp()
        self.d.ctl("migrate")
        self.d.start_ledger("ledger.0")
        self.a, self.a2 = accounts_on("ledger.0", "alice", 2)
        self.d.account(self.a)
        self.d.account(self.a2)
        # fund through the ledger directly: a signed prepare + commit
        self.ext = accounts_on("ledger.0", "ext")[0]
        self.d.account(self.ext, external=True)
        self.txn = 9000
        self.deliver("txn.prepare", self.prepare(1, [(self.ext, -500), (self.a, 500)]))
        self.expect("txn.vote", vote="yes")
        self.deliver("txn.commit", {"txn": 1, "payment_id": "fund"})
        self.expect("txn.ack")

    def prepare(self, txn, legs, deadline_ms=2 ** 62):
        return {"txn": txn, "payment_id": "p-%d" % txn, "deadline_ms": deadline_ms,
                "legs": [{"account": a, "amount": x, "currency": "EUR"} for a, x in legs]}

    def deliver(self, msg_type, body, shard="ledger.0", **props):
        """Publish a signed protocol message; returns (raw body, properties)
        so a test can publish the very same message again."""
        raw = json.dumps(body).encode()
        props = signed_props(msg_type, raw, reply_to=self.d.reply_queue,
                             correlation_id=str(body["txn"]), **props)
        # as the administrator, playing the coordinator
        self.d.admin_ch.basic_publish("paytx.participants", shard, raw, props)
        return raw, props

    def dead_letters(self, n):
        self.d.wait_for(lambda: self.d.dead_count() >= n, what="%d dead letters" % n)
        return self.d.dead_letters()

    def expect(self, msg_type, **fields):
        out, props = self.d.wait_reply(timeout=15)
        self.assertEqual(props.type, msg_type)
        for k, v in fields.items():
            self.assertEqual(out[k], v, out)
        return out

    def test_duplicate_prepare_votes_the_same_and_holds_once(self):
        p = self.prepare(10, [(self.a, -100), (self.a2, 100)])
        self.deliver("txn.prepare", p)
        self.deliver("txn.prepare", p)
        self.expect("txn.vote", vote="yes", txn=10)
        self.expect("txn.vote", vote="yes", txn=10)
        self.assertEqual(self.d.balance(self.a), (500, 100))

    def test_duplicate_commit_posts_once(self):
        self.deliver("txn.prepare", self.prepare(11, [(self.a, -100), (self.a2, 100)]))
        self.expect("txn.vote", vote="yes")
        for _ in range(3):
            self.deliver("txn.commit", {"txn": 11, "payment_id": "p-11"})
        for _ in range(3):
            self.expect("txn.ack", decision="commit")
        self.assertEqual(self.d.balance(self.a), (400, 0))
        self.assertEqual(self.d.journal(self.a2), [("p-11", 100)])

    def test_abort_before_prepare_makes_the_prepare_vote_no(self):
        self.deliver("txn.abort", {"txn": 12, "payment_id": "p-12"})
        self.expect("txn.ack", decision="abort")
        self.deliver("txn.prepare", self.prepare(12, [(self.a, -100), (self.a2, 100)]))
        self.expect("txn.vote", vote="no")
        self.assertEqual(self.d.balance(self.a), (500, 0))  # no hanging reservation

    def test_abort_releases_and_late_commit_is_refused(self):
        self.deliver("txn.prepare", self.prepare(13, [(self.a, -100), (self.a2, 100)]))
        self.expect("txn.vote", vote="yes")
        self.deliver("txn.abort", {"txn": 13, "payment_id": "p-13"})
        self.expect("txn.ack", decision="abort")
        self.assertEqual(self.d.balance(self.a), (500, 0))
        self.deliver("txn.commit", {"txn": 13, "payment_id": "p-13"})
        self.d.wait_for(lambda: self.d.dead_count() == 1, what="dead letter")
        props, _ = self.d.dead_letters()[0]
        self.assertEqual(props.headers["x-paytx-error-code"], "protocol_violation")
        self.assertEqual(self.d.balance(self.a2), (0, 0))

    def test_two_prepares_cannot_spend_the_same_funds(self):
        self.deliver("txn.prepare", self.prepare(14, [(self.a, -400), (self.a2, 400)]))
        self.deliver("txn.prepare", self.prepare(15, [(self.a, -400), (self.a2, 400)]))
        votes = sorted([self.expect("txn.vote")["vote"] for _ in range(2)])
        self.assertEqual(votes, ["no", "yes"])
        self.assertEqual(self.d.balance(self.a), (500, 400))

    def test_unsigned_prepare_reserves_nothing(self):
        raw = json.dumps(self.prepare(16, [(self.a, -100), (self.a2, 100)])).encode()
        self.d.admin_ch.basic_publish("paytx.participants", "ledger.0", raw,
                                      pika.BasicProperties(type="txn.prepare",
                                                           reply_to=self.d.reply_queue))
        self.d.wait_for(lambda: self.d.dead_count() == 1, what="dead letter")
        self.assertEqual(self.d.balance(self.a), (500, 0))


    def test_replayed_commit_is_dead_lettered_counted_and_moves_nothing(self):
        self.deliver("txn.prepare", self.prepare(17, [(self.a, -100), (self.a2, 100)]))
        self.expect("txn.vote", vote="yes")
        raw, props = self.deliver("txn.commit", {"txn": 17, "payment_id": "p-17"})
        self.expect("txn.ack", decision="commit")
        for _ in range(2):  # the captured message, byte for byte
            self.d.admin_ch.basic_publish("paytx.participants", "ledger.0", raw, props)
        dead = self.dead_letters(2)
        self.assertEqual([p.headers["x-paytx-error-code"] for p, _ in dead], ["replayed"] * 2)
        self.assertEqual(dead[0][0].headers["x-paytx-error-text"], "message_id seen before")
        self.assertEqual(self.d.balance(self.a), (400, 0))
        self.assertEqual(self.d.journal(self.a2), [("p-17", 100)])
        self.assertIn("2 replayed from ledger.0 so far", self.d.log_text("ledger.0"))

    def test_replayed_prepare_after_abort_reserves_nothing(self):
        raw, props = self.deliver("txn.prepare",
                                  self.prepare(18, [(self.a, -100), (self.a2, 100)]))
        self.expect("txn.vote", vote="yes")
        self.deliver("txn.abort", {"txn": 18, "payment_id": "p-18"})
        self.expect("txn.ack", decision="abort")
        self.d.admin_ch.basic_publish("paytx.participants", "ledger.0", raw, props)
        dead = self.dead_letters(1)
        self.assertEqual(dead[0][0].headers["x-paytx-error-code"], "replayed")
        self.assertEqual(self.d.balance(self.a), (500, 0))

    def test_stale_or_future_commit_is_refused_as_a_replay(self):
        self.deliver("txn.prepare", self.prepare(19, [(self.a, -100), (self.a2, 100)]))
        self.expect("txn.vote", vote="yes")
        now = int(time.time())
        for ts in (now - 7200, now + 7200):  # signed, but outside the 900 s window
            self.deliver("txn.commit", {"txn": 19, "payment_id": "p-19"}, timestamp=ts)
        dead = self.dead_letters(2)
        self.assertEqual({p.headers["x-paytx-error-text"] for p, _ in dead},
                         {"timestamp outside the replay window"})
        self.assertEqual(self.d.balance(self.a), (500, 100))  # still only held
        self.deliver("txn.commit", {"txn": 19, "payment_id": "p-19"})
        self.expect("txn.ack", decision="commit")
        self.assertEqual(self.d.balance(self.a), (400, 0))

    def test_commit_for_another_transaction_changes_nothing(self):
        self.deliver("txn.prepare", self.prepare(20, [(self.a, -100), (self.a2, 100)]))
        self.expect("txn.vote", vote="yes")
        # A genuine signed commit, but for a transaction never prepared here.
        self.deliver("txn.commit", {"txn": 21, "payment_id": "p-21"})
        # A captured commit edited to name another transaction.
        raw, props = self.deliver("txn.commit", {"txn": 22, "payment_id": "p-22"},
                                  shard="nowhere")
        edited = raw.replace(b'"txn": 22', b'"txn": 20')
        self.d.admin_ch.basic_publish("paytx.participants", "ledger.0", edited, props)
        dead = self.dead_letters(2)
        self.assertEqual(sorted(p.headers["x-paytx-error-code"] for p, _ in dead),
                         ["bad_signature", "protocol_violation"])
        self.assertEqual(self.d.balance(self.a), (500, 100))
        self.assertEqual(self.d.journal(self.a2), [])
        self.deliver("txn.abort", {"txn": 20, "payment_id": "p-20"})
        self.expect("txn.ack", decision="abort")

    # -- several protocol messages in one txn.batch ---------------------------

    def deliver_batch(self, entries, shard="ledger.0", key=None):
        """Publish one signed txn.batch of (type, body, correlation_id)."""
        raw = json.dumps({"entries": [
            dict({"type": t, "body": b}, **({"correlation_id": c} if c else {}))
            for t, b, c in entries]}).encode()
        props = signed_props("txn.batch", raw, reply_to=self.d.reply_queue,
                             **({"key": key} if key else {}))
        self.d.admin_ch.basic_publish("paytx.participants", shard, raw, props)
        return raw, props

    def test_a_batch_is_applied_step_by_step_and_answered_per_entry(self):
        self.deliver_batch([
            ("txn.prepare", self.prepare(30, [(self.a, -100), (self.a2, 100)]), "c30"),
            ("txn.prepare", self.prepare(31, [(self.a, -350), (self.a2, 350)]), "c31"),
            ("txn.prepare", self.prepare(32, [(self.a, -100), (self.a2, 100)]), "c32"),
            ("txn.commit", {"txn": 30, "payment_id": "p-30"}, "c30b"),
            ("txn.abort", {"txn": 31, "payment_id": "p-31"}, "c31b"),
        ])
        # 500 funded: 30 and 31 fit together, 32 does not (in batch order).
        want = {"c30": ("txn.vote", "yes"), "c31": ("txn.vote", "yes"),
                "c32": ("txn.vote", "no"), "c30b": ("txn.ack", "commit"),
                "c31b": ("txn.ack", "abort")}
        for corr, (msg_type, answer) in want.items():
            out, props = self.d.wait_reply(corr, timeout=15)
            self.assertEqual(props.type, msg_type)
            self.assertEqual(out["vote" if msg_type == "txn.vote" else "decision"], answer)
        self.assertEqual(self.d.balance(self.a), (400, 0))
        self.assertEqual(self.d.journal(self.a2), [("p-30", 100)])

    def test_a_bad_entry_refuses_the_whole_batch(self):
        raw, _ = self.deliver_batch([
            ("txn.prepare", self.prepare(33, [(self.a, -100), (self.a2, 100)]), "c33"),
            ("txn.commit", {"payment_id": "p-33"}, "c33b"),  # no txn
        ])
        props, body = self.dead_letters(1)[0]
        self.assertEqual(props.type, "txn.batch")
        self.assertEqual(body, raw)
        self.assertEqual(props.headers["x-paytx-error-code"], "missing_field")
        self.assertEqual(props.headers["x-paytx-error-text"], "entries[1].body.txn: required")
        self.assertEqual(self.d.balance(self.a), (500, 0))  # the prepare did not run

    def test_replies_in_a_batch_to_a_participant_are_refused(self):
        self.deliver_batch([("txn.vote", {"txn": 34, "participant": "ledger.0",
                                          "vote": "yes"}, None)])
        props, _ = self.dead_letters(1)[0]
        self.assertEqual(props.headers["x-paytx-error-code"], "unknown_message_type")
        self.assertEqual(props.headers["x-paytx-error-text"],
                         "entries[0].type: must be txn.prepare, txn.commit or txn.abort")

    def test_an_unsigned_or_badly_signed_batch_moves_nothing(self):
        entries = [("txn.prepare", self.prepare(35, [(self.a, -100), (self.a2, 100)]), None)]
        self.deliver_batch(entries, key="another key of enough length")
        raw = json.dumps({"entries": [{"type": "txn.prepare", "body": entries[0][1]}]})
        self.d.admin_ch.basic_publish("paytx.participants", "ledger.0", raw.encode(),
                                      pika.BasicProperties(type="txn.batch",
                                                           reply_to=self.d.reply_queue))
        dead = self.dead_letters(2)
        self.assertEqual([p.headers["x-paytx-error-code"] for p, _ in dead],
                         ["bad_signature"] * 2)
        self.assertEqual(self.d.balance(self.a), (500, 0))

    def test_an_impossible_entry_is_dead_lettered_alone(self):
        self.deliver_batch([
            ("txn.prepare", self.prepare(36, [(self.a, -100), (self.a2, 100)]), "c36"),
            ("txn.commit", {"txn": 37, "payment_id": "p-37"}, "c37"),  # never prepared
            ("txn.commit", {"txn": 36, "payment_id": "p-36"}, "c36b"),
        ])
        self.assertEqual(self.d.wait_reply("c36", timeout=15)[0]["vote"], "yes")
        self.assertEqual(self.d.wait_reply("c36b", timeout=15)[0]["decision"], "commit")
        props, body = self.dead_letters(1)[0]
        # The dead letter is the refused commit as it would have come alone.
        self.assertEqual(props.type, "txn.commit")
        self.assertEqual(props.correlation_id, "c37")
        self.assertEqual(json.loads(body), {"txn": 37, "payment_id": "p-37"})
        self.assertEqual(props.headers["x-paytx-error-code"], "protocol_violation")
        self.assertEqual(props.headers["x-paytx-batch-entry"], 1)
        self.assertNotIn("x-paytx-signature", props.headers)
        self.assertEqual(self.d.balance(self.a), (400, 0))
        self.assertEqual(self.d.journal(self.a2), [("p-36", 100)])
        with self.assertRaises(AssertionError):  # and nothing answered it
            self.d.wait_reply("c37", timeout=1)

    def test_a_fault_of_an_entry_body_itself_names_the_body(self):
        # A fault of the body object itself names the body, not a field
        # "message" (the name a single message's fault gives the whole).
        self.deliver_batch([("txn.commit", {"txn": 38, "payment_id": "p-38", "bad key!": 1},
                             None)])
        props, _ = self.dead_letters(1)[0]
        self.assertEqual(props.headers["x-paytx-error-text"],
                         "entries[0].body: unknown field (name not shown)")

    def test_an_impossible_entry_dead_lettered_alone_keeps_its_traceparent(self):
        # Dead-lettered alone "as the message it would have been": with the
        # entry's own traceparent as its header.
        tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        raw = json.dumps({"entries": [
            {"type": "txn.commit", "correlation_id": "c39", "traceparent": tp,
             "body": {"txn": 39, "payment_id": "p-39"}},        # never prepared
            {"type": "txn.abort", "body": {"txn": 40, "payment_id": "p-40"}}]}).encode()
        self.d.admin_ch.basic_publish("paytx.participants", "ledger.0", raw, signed_props(
            "txn.batch", raw, reply_to=self.d.reply_queue))
        props, _ = self.dead_letters(1)[0]
        self.assertEqual((props.type, props.headers["x-paytx-batch-entry"]), ("txn.commit", 0))
        self.assertEqual(props.headers.get("traceparent"), tp)


if __name__ == "__main__":
    main()

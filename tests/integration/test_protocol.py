#!/usr/bin/env python3
"""The participant protocol under duplicates and reordering, driven with
correctly signed messages straight to a ledger shard's queue."""
import json

import pika

from harness import PaytxTestCase, accounts_on, main, sign


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

    def deliver(self, msg_type, body, shard="ledger.0"):
        raw = json.dumps(body).encode()
        # as the administrator, playing the coordinator
        self.d.admin_ch.basic_publish("paytx.participants", shard, raw, pika.BasicProperties(
            type=msg_type, reply_to=self.d.reply_queue, correlation_id=str(body["txn"]),
            headers={"x-paytx-signature": sign(msg_type, raw)}))

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


if __name__ == "__main__":
    main()

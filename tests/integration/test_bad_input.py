#!/usr/bin/env python3
"""Bad submits: a precise rejected outcome, a dead letter with the reason,
no crash, nothing else lost."""
import json

import pika

from harness import PaytxTestCase, main, sign, signed_props


class BadInput(PaytxTestCase):

    def setUp(self):
        super().setUp()
        self.alice_and_bob(1000)

    def good(self, **kw):
        p = {"payment_id": "ok", "from": self.a, "to": self.b, "amount": 1, "currency": "EUR"}
        p.update(kw)
        return p

    def reject(self, body, reason, detail_has=None):
        corr = self.d.submit(body)
        out, _ = self.d.wait_reply(corr)
        self.assertEqual(out["status"], "rejected", out)
        self.assertEqual(out["reason"], reason, out)
        if detail_has:
            self.assertIn(detail_has, out["detail"])
        return out

    def test_each_bad_submit_is_rejected_with_a_precise_reason(self):
        cases = [
            (b"{not json", "malformed_json", None),
            (b"[1,2]", "wrong_type", None),
            (json.dumps({"from": self.a, "to": self.b, "amount": 1, "currency": "EUR"}),
             "missing_field", "payment_id"),
            (json.dumps(self.good(amount="100")), "wrong_type", "amount"),
            (json.dumps(self.good(amount=1.5)), "wrong_type", "amount"),
            (b'{"payment_id":"x","from":"a1","to":"b1","amount":1e3,"currency":"EUR"}',
             "wrong_type", "amount"),
            (json.dumps(self.good(amount=10**16)), "amount_out_of_range", "amount"),
            (b'{"payment_id":"x","from":"a1","to":"b1","amount":9223372036854775808,'
             b'"currency":"EUR"}', "amount_out_of_range", "amount"),
            (b'{"payment_id":"x","from":"a1","to":"b1","amount":18446744073709551616,'
             b'"currency":"EUR"}', "amount_out_of_range", "amount"),
            (json.dumps({"payment_id": "u", "legs": [
                {"account": self.a, "amount": -5, "currency": "EUR"},
                {"account": self.b, "amount": 4, "currency": "EUR"}]}),
             "unbalanced_legs", None),
            (json.dumps(self.good(payment_id="bad id!")), "invalid_request", "payment_id"),
            (json.dumps(self.good(currency="euro")), "invalid_request", "currency"),
            (json.dumps(self.good(metadata={"k": "x" * 5000})), "message_too_large", None),
            (b'{"payment_id":"big","pad":"' + b"x" * 70000 + b'"}', "message_too_large", None),
            (b'{"payment_id":"\xff\xfe","from":"a","to":"b","amount":1,"currency":"EUR"}',
             "invalid_encoding", None),
        ]
        for body, reason, detail in cases:
            with self.subTest(reason=reason, body=body[:60]):
                self.reject(body, reason, detail)
        dead = self.d.dead_letters()
        self.assertEqual(len(dead), len(cases))
        codes = [p.headers["x-paytx-error-code"] for p, _ in dead]
        self.assertEqual(codes, [c[1] for c in cases])
        for props, body in dead:
            self.assertTrue(props.headers["x-paytx-error-text"])
            self.assertEqual(props.headers["x-paytx-origin-queue"], "paytx.submit")
        # the original bytes are kept for inspection and replay
        self.assertEqual(dead[0][1], b"{not json")
        self.assertTrue(self.d.alive("coordinator"))
        # and the system still works
        out = self.d.pay_and_wait(self.good(payment_id="after"))
        self.assertEqual(out["status"], "committed")
        self.d.check_invariants(self)

    def test_rejected_without_reply_to_is_still_dead_lettered(self):
        self.d.submit(b"{oops", reply=False)
        self.d.wait_for(lambda: self.d.dead_count() == 1, what="dead letter")
        props, body = self.d.dead_letters()[0]
        self.assertEqual(props.headers["x-paytx-error-code"], "malformed_json")
        self.assertEqual(body, b"{oops")
        rej = [e for k, e in self.d.events() if k == "payment.rejected"]
        self.assertEqual(len(rej), 1)

    def test_wrong_message_type_on_submit_queue_is_refused(self):
        corr = self.d.submit(json.dumps(self.good(payment_id="typed")), msg_type="txn.commit")
        out, _ = self.d.wait_reply(corr)
        self.assertEqual((out["status"], out["reason"]), ("rejected", "unknown_message_type"))

    def test_forged_vote_to_coordinator_is_dead_lettered(self):
        # A vote with no valid signature, sent to the coordinator's reply queue
        # (by the administrator: a client may not use the default exchange).
        queue = "paytx.reply.%s-coordinator" % self.d.name
        body = json.dumps({"txn": 1, "participant": "ledger.0", "vote": "yes"}).encode()
        self.d.admin_ch.basic_publish("", queue, body, pika.BasicProperties(
            type="txn.vote", headers={"x-paytx-signature": "0" * 64}))
        self.d.wait_for(lambda: self.d.dead_count() == 1, what="dead letter")
        props, _ = self.d.dead_letters()[0]
        self.assertEqual(props.headers["x-paytx-error-code"], "bad_signature")
        self.assertTrue(self.d.alive("coordinator"))

    def test_replayed_vote_to_coordinator_is_dead_lettered_and_counted(self):
        # A correctly signed vote (for no transaction of this coordinator's),
        # then the very same message again: the copy is a replay.
        queue = "paytx.reply.%s-coordinator" % self.d.name
        body = json.dumps({"txn": 987654, "participant": "ledger.0", "vote": "yes"}).encode()
        props = signed_props("txn.vote", body)
        for _ in range(2):  # as the administrator: a participant's way in
            self.d.admin_ch.basic_publish("", queue, body, props)
        self.d.wait_for(lambda: self.d.dead_count() == 1, what="dead letter")
        props, _ = self.d.dead_letters()[0]
        self.assertEqual(props.headers["x-paytx-error-code"], "replayed")
        self.assertIn("1 replayed from %s so far" % queue, self.d.log_text("coordinator"))
        self.assertEqual(self.d.pay_and_wait(self.good(payment_id="after-replay"))["status"],
                         "committed")

    def test_forged_commit_to_participant_moves_no_money(self):
        # A forged commit straight into a ledger queue, by a user allowed onto
        # paytx.participants (a client is not: test_rabbit_roles).
        body = json.dumps({"txn": 424242, "payment_id": "forged"}).encode()
        for sig in (None, "0" * 64, sign("txn.commit", body, key="wrong-key-0123456789")):
            headers = {"x-paytx-signature": sig} if sig else {}
            self.d.admin_ch.basic_publish("paytx.participants", "ledger.1", body,
                                          pika.BasicProperties(type="txn.commit",
                                                               reply_to=self.d.reply_queue,
                                                               headers=headers))
        self.d.wait_for(lambda: self.d.dead_count() == 3, what="3 dead letters")
        codes = {p.headers["x-paytx-error-code"] for p, _ in self.d.dead_letters()}
        self.assertEqual(codes, {"bad_signature"})
        self.assertEqual(self.d.balance(self.b), (0, 0))
        self.d.check_invariants(self)


if __name__ == "__main__":
    main()

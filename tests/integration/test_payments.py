#!/usr/bin/env python3
"""Payments end to end: commit across shards, abort reasons, idempotency."""
import json
import subprocess

from harness import PaytxTestCase, accounts_on, main


class Payments(PaytxTestCase):

    def two_accounts(self, funds=1000, currency="EUR"):
        return self.alice_and_bob(funds, currency)

    def test_transfer_commits_on_both_shards(self):
        a, b = self.two_accounts()
        self.d.events()  # drop the funding event
        out = self.d.pay_and_wait({"payment_id": "p-1", "from": a, "to": b,
                                   "amount": 250, "currency": "EUR"})
        self.assertEqual(out["status"], "committed")
        self.assertEqual(out["payment_id"], "p-1")
        self.assertGreater(out["txn"], 0)
        self.assertEqual(self.d.balance(a), (750, 0))
        self.assertEqual(self.d.balance(b), (250, 0))
        self.assertEqual(self.d.journal(b), [("p-1", 250)])
        self.assertIn(("p-1", -250), self.d.journal(a))
        events = self.d.events()
        self.assertIn("payment.committed", [k for k, _ in events])
        self.assertEqual([e for k, e in events if e["payment_id"] == "p-1"][0]["status"],
                         "committed")
        state = self.d.query("coord", "SELECT state FROM payments WHERE payment_id='p-1'")
        self.assertEqual(state, [("committed",)])
        self.d.check_invariants(self)

    def test_multi_leg_payment_commits(self):
        a, b = self.two_accounts()
        c = accounts_on("ledger.0", "carol")[0]
        self.d.account(c)
        out = self.d.pay_and_wait({"payment_id": "multi-1", "legs": [
            {"account": a, "amount": -300, "currency": "EUR"},
            {"account": b, "amount": 200, "currency": "EUR"},
            {"account": c, "amount": 100, "currency": "EUR"}]})
        self.assertEqual(out["status"], "committed", out)
        self.assertEqual(self.d.balance(a)[0], 700)
        self.assertEqual(self.d.balance(b)[0], 200)
        self.assertEqual(self.d.balance(c)[0], 100)
        self.d.check_invariants(self)

    def assert_aborted(self, payment, reason, *accounts):
        before = {x: self.d.balance(x) for x in accounts}
        out = self.d.pay_and_wait(payment)
        self.assertEqual(out["status"], "aborted", out)
        self.assertEqual(out["reason"], reason, out)
        self.assertTrue(out["detail"])
        self.d.check_invariants(self)  # waits for the holds to be released
        for x in accounts:
            self.assertEqual(self.d.balance(x), before[x], x)
        self.d.check_invariants(self)
        return out

    def test_insufficient_funds_aborts_and_moves_nothing(self):
        a, b = self.two_accounts(funds=100)
        self.assert_aborted({"payment_id": "too-much", "from": a, "to": b, "amount": 101,
                             "currency": "EUR"}, "insufficient_funds", a, b)

    def test_unknown_account_aborts(self):
        a, b = self.two_accounts()
        ghost = accounts_on("ledger.1", "ghost")[0]
        self.assert_aborted({"payment_id": "to-ghost", "from": a, "to": ghost, "amount": 5,
                             "currency": "EUR"}, "unknown_account", a)

    def test_currency_mismatch_aborts(self):
        a, b = self.two_accounts()
        u = accounts_on("ledger.1", "usd")[0]
        self.d.account(u, "USD")
        self.assert_aborted({"payment_id": "wrong-cur", "legs": [
            {"account": a, "amount": -5, "currency": "EUR"},
            {"account": u, "amount": 5, "currency": "EUR"}]}, "currency_mismatch", a, u)

    def test_outcome_is_also_an_event_for_aborts(self):
        a, b = self.two_accounts(funds=0)
        self.d.events()
        self.d.pay_and_wait({"payment_id": "broke", "from": a, "to": b, "amount": 1,
                             "currency": "EUR"})
        keys = [k for k, e in self.d.events() if e["payment_id"] == "broke"]
        self.assertEqual(keys, ["payment.aborted"])

    def test_duplicate_submit_returns_first_outcome_and_moves_money_once(self):
        a, b = self.two_accounts()
        p = {"payment_id": "dup-1", "from": a, "to": b, "amount": 10, "currency": "EUR"}
        first = self.d.pay_and_wait(p)
        second = self.d.pay_and_wait(p)
        self.assertEqual(first["status"], "committed")
        self.assertEqual(second, first)
        # the legs form of the same transfer is the same content
        legs = {"payment_id": "dup-1", "legs": [
            {"account": b, "amount": 10, "currency": "EUR"},
            {"account": a, "amount": -10, "currency": "EUR"}]}
        self.assertEqual(self.d.pay_and_wait(legs), first)
        self.assertEqual(self.d.balance(b), (10, 0))
        self.assertEqual(len(self.d.journal(b)), 1)
        self.d.check_invariants(self)

    def test_duplicates_in_flight_get_one_outcome_each(self):
        a, b = self.two_accounts()
        p = {"payment_id": "burst", "from": a, "to": b, "amount": 7, "currency": "EUR"}
        corrs = [self.d.submit(p) for _ in range(5)]
        outs = [self.d.wait_reply(c)[0] for c in corrs]
        self.assertEqual({o["status"] for o in outs}, {"committed"})
        self.assertEqual({o["txn"] for o in outs}, {outs[0]["txn"]})
        self.assertEqual(self.d.balance(b), (7, 0))
        self.d.check_invariants(self)

    def test_same_id_with_other_content_is_a_conflict(self):
        a, b = self.two_accounts()
        self.d.pay_and_wait({"payment_id": "c-1", "from": a, "to": b, "amount": 10,
                             "currency": "EUR"})
        out = self.d.pay_and_wait({"payment_id": "c-1", "from": a, "to": b, "amount": 11,
                                   "currency": "EUR"})
        self.assertEqual(out["status"], "rejected")
        self.assertEqual(out["reason"], "payment_id_conflict")
        self.assertEqual(self.d.balance(b), (10, 0))
        dead = self.d.dead_letters()
        self.assertEqual([p.headers["x-paytx-error-code"] for p, _ in dead],
                         ["payment_id_conflict"])

    def test_plain_amqp_client_can_submit(self):
        a, b = self.two_accounts()
        body = json.dumps({"payment_id": "cli-1", "from": a, "to": b, "amount": 3,
                           "currency": "EUR"})
        subprocess.run(["amqp-publish", "--url", self.d.amqp_url, "-e", "paytx.submit",
                        "-p", "-C", "application/json", "--reply-to", self.d.reply_queue,
                        "-b", body], check=True, timeout=30)
        out, _ = self.d.wait_reply()
        self.assertEqual(out["payment_id"], "cli-1")
        self.assertEqual(out["status"], "committed")
        self.assertEqual(self.d.balance(b), (3, 0))

    def test_paytxctl_pay_reports_the_outcome(self):
        a, b = self.two_accounts(funds=50)
        ok = self.d.ctl("pay", "ctl-1", a, b, "20", "EUR")
        self.assertIn("committed", ok.stdout)
        no = self.d.ctl("pay", "ctl-2", a, b, "31", "EUR", check=False)
        self.assertEqual(no.returncode, 3, no.stdout + no.stderr)
        self.assertIn("insufficient_funds", no.stdout)
        st = self.d.ctl("--json", "status", "ctl-2")
        status = json.loads(st.stdout)
        self.assertEqual(status["outcome"], "aborted")
        self.assertIn(status["state"], ("aborting", "aborted"))  # holds may still be released
        missing = self.d.ctl("status", "nope", check=False)
        self.assertEqual(missing.returncode, 6)
        bal = json.loads(self.d.ctl("--json", "balance", b).stdout)
        self.assertEqual(bal["balance"], 20)


if __name__ == "__main__":
    main()

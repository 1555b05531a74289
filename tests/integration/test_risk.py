#!/usr/bin/env python3
"""The risk participant: added to a running system by starting paytx-risk
and naming it in the coordinator's PAYTX_PARTICIPANTS, nothing else; it
aborts payments that break a per-payment cap or a daily total
(limit_exceeded), concurrent payments cannot exceed the total together, and
aborted payments give their reservation back."""
import signal
import uuid

from harness import PaytxTestCase, accounts_on, main


class Risk(PaytxTestCase):

    def add_risk(self, replicas=1, **risk_env):
        """Start paytx-risk (replicas of it) and restart the coordinator
        with PAYTX_PARTICIPANTS=risk: the only change to the system."""
        for i in range(replicas):
            self.d.start_risk("risk" if i == 0 else "risk-%d" % i, **risk_env)
        self.d.stop("coordinator")
        self.d.start_coordinator(PAYTX_PARTICIPANTS="risk")
        self.d.wait_consumers("risk", replicas)

    def limit(self, account, *args):
        return self.d.ctl("limit", "set", account, "EUR", *args)

    def pay(self, frm, to, amount, payment_id=None):
        return self.d.pay_and_wait({"payment_id": payment_id or "p-" + uuid.uuid4().hex[:12],
                                    "from": frm, "to": to, "amount": amount,
                                    "currency": "EUR"})

    def usage(self, account):
        rows = self.d.query("risk", "SELECT committed, reserved FROM daily_usage WHERE "
                                    "account = %s AND currency = 'EUR' AND "
                                    "day = (now() AT TIME ZONE 'UTC')::date", (account,))
        return rows[0] if rows else (0, 0)

    def assert_limited(self, out, *words):
        self.assertEqual(out["status"], "aborted", out)
        self.assertEqual(out["reason"], "limit_exceeded", out)
        for w in words:
            self.assertIn(str(w), out["detail"])

    def test_limits_apply_once_risk_joins_a_running_system(self):
        a, b = self.alice_and_bob(funds=100000)
        self.assertEqual(self.pay(a, b, 5000)["status"], "committed")  # no risk yet
        self.add_risk()
        self.limit("world")                              # the funding source: no limit
        self.limit("default", "--per-payment", "1000", "--daily", "2500")

        out = self.pay(a, b, 1001)
        self.assert_limited(out, a, "per-payment", "1000", "1001")
        self.d.check_invariants(self)
        self.assertEqual(self.d.balance(a), (95000, 0))   # moved nothing
        self.assertEqual(self.d.balance(b), (5000, 0))

        for amount in (1000, 1000):
            self.assertEqual(self.pay(a, b, amount)["status"], "committed")
        out = self.pay(a, b, 600)                         # 2000 + 600 > 2500
        self.assert_limited(out, a, "daily", "2500", "2000", "600")
        self.assertEqual(self.pay(a, b, 500)["status"], "committed")   # exactly 2500
        self.assert_limited(self.pay(a, b, 1), a, "daily")
        self.d.check_invariants(self)
        self.assertEqual(self.d.balance(a), (92500, 0))
        self.assertEqual(self.usage(a), (2500, 0))

        # b has its own limit, which replaces the default; c has none: the default
        self.limit(b, "--per-payment", "50000")
        self.assertEqual(self.pay(b, a, 3000)["status"], "committed")
        c = accounts_on("ledger.0", "carol")[0]
        self.d.account(c)
        self.d.fund(c, 5000)
        self.assert_limited(self.pay(c, b, 1500), c, "the default per-payment limit")
        self.assertEqual(self.pay(c, b, 1000)["status"], "committed")

        shown = self.d.ctl("limit", "show", a, "EUR", "--json").stdout
        self.assertIn('"limit":"default"', shown)
        self.assertIn('"committed":2500', shown)
        self.d.check_invariants(self)

    def test_concurrent_payments_cannot_exceed_the_daily_total(self):
        a, b = self.alice_and_bob(funds=100000)
        # two replicas on one queue, small batches: prepares really interleave
        self.add_risk(replicas=2, PAYTX_BATCH_MAX=2, PAYTX_PREFETCH=4)
        self.limit("world")
        self.limit(a, "--daily", "1000")
        corrs = [self.d.submit({"payment_id": "c-%d" % i, "from": a, "to": b, "amount": 100,
                                "currency": "EUR"}) for i in range(25)]
        outs = [self.d.wait_reply(corr)[0] for corr in corrs]
        committed = [o for o in outs if o["status"] == "committed"]
        limited = [o for o in outs if o.get("reason") == "limit_exceeded"]
        self.assertEqual(len(committed), 10, outs)
        self.assertEqual(len(limited), 15, outs)
        self.d.check_invariants(self)
        self.assertEqual(self.d.balance(a), (99000, 0))
        self.assertEqual(self.usage(a), (1000, 0))

    def test_aborted_payments_release_their_reservation(self):
        a, b = self.alice_and_bob(funds=300)
        self.add_risk()
        self.limit("world")
        self.limit("default", "--daily", "1000")
        # risk reserves 500, the ledger refuses: the abort gives it back
        out = self.pay(a, b, 500)
        self.assertEqual(out["status"], "aborted", out)
        self.assertEqual(out["reason"], "insufficient_funds", out)
        self.d.check_invariants(self)
        self.assertEqual(self.usage(a), (0, 0))
        self.d.fund(a, 2000)
        self.assertEqual(self.pay(a, b, 1000)["status"], "committed")  # the whole day's total
        self.assertEqual(self.usage(a), (1000, 0))
        self.assertEqual(self.d.query("risk", "SELECT count(*) FROM reservations WHERE "
                                              "account = %s AND state = 'released'", (a,)),
                         [(1,)])
        self.d.check_invariants(self)

    def crash_and_recover(self, point):
        """risk killed at point while a payment is in flight, then restarted:
        the payment ends one way, and its reservation with it."""
        a, b = self.alice_and_bob(funds=1000)
        self.add_risk()
        self.limit(a, "--daily", "500")
        self.d.stop("risk")
        self.d.start_risk(PAYTX_CRASH_AT=point)
        corr = self.d.submit({"payment_id": "crash-1", "from": a, "to": b, "amount": 400,
                              "currency": "EUR"})
        self.d.wait_for(lambda: not self.d.alive("risk"), timeout=20,
                        what="risk to reach " + point)
        self.assertEqual(self.d.procs["risk"].returncode, -signal.SIGKILL)
        self.d.stop("risk")
        self.d.start_risk()
        out, _ = self.d.wait_reply(corr, timeout=40)
        self.assertIn(out["status"], ("committed", "aborted"), out)
        self.d.check_invariants(self)   # also: no reservation left held
        used = 400 if out["status"] == "committed" else 0
        self.assertEqual(self.usage(a), (used, 0))
        self.assertEqual(self.d.balance(a), (1000 - used, 0))

    def test_crash_after_reserving_before_the_vote(self):
        self.crash_and_recover("participant.after_local_commit@1")

    def test_crash_after_the_decision_before_the_ack(self):
        self.crash_and_recover("participant.after_local_commit@2")

    def test_payments_in_flight_when_risk_joins_finish_without_it(self):
        # A payment decided before risk was named is adopted by a
        # coordinator that names it: the decision goes to the participants
        # that prepared it (kept in the log), not to risk, which never saw
        # its prepare and would refuse the commit.
        a, b = self.alice_and_bob(funds=1000)
        self.d.wait_outcomes_marked()  # @2 counts log commits
        self.d.stop("coordinator")
        self.d.start_coordinator(PAYTX_CRASH_AT="coordinator.after_log_commit@2")
        self.d.submit({"payment_id": "before-risk", "from": a, "to": b, "amount": 10,
                       "currency": "EUR"}, reply=False)
        self.d.wait_for(lambda: not self.d.alive("coordinator"), what="the crash")
        state = "SELECT state FROM payments WHERE payment_id = 'before-risk'"
        self.assertEqual(self.d.query("coord", state), [("committing",)])
        self.d.start_risk()
        self.d.start_coordinator(PAYTX_PARTICIPANTS="risk")  # same id: adopts it
        self.d.wait_for(lambda: self.d.query("coord", state) == [("committed",)], timeout=30,
                        what="the payment committed")
        self.assertEqual(self.d.dead_count(), 0)
        self.assertEqual(self.d.balance(b), (10, 0))
        self.assertEqual(self.pay(a, b, 5)["status"], "committed")  # risk votes from now on
        self.d.check_invariants(self)
        self.d.check_risk(self)

if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Several coordinators: lease adoption, status queries answered from the
log, a decision race settled by the log, duplicated protocol messages."""
import signal
import time

from harness import PaytxTestCase, main


class Coordinators(PaytxTestCase):

    start_services = False

    def setUp(self):
        super().setUp()
        self.d.ctl("migrate")
        self.d.start_ledger("ledger.0")
        self.d.start_ledger("ledger.1")
        self.d.start_coordinator("coord-a", PAYTX_LEASE_MS=2000)
        self.alice_and_bob(100000)

    def pay(self, pid, amount=100):
        return {"payment_id": pid, "from": self.a, "to": self.b, "amount": amount,
                "currency": "EUR"}

    def state(self, pid):
        rows = self.d.query("coord", "SELECT state FROM payments WHERE payment_id = %s", (pid,))
        return rows[0][0] if rows else None

    def test_survivor_adopts_a_dead_coordinators_payments(self):
        self.d.wait_outcomes_marked()  # @2 counts log commits
        self.d.stop("coord-a")
        self.d.start_coordinator("coord-a", PAYTX_LEASE_MS=2000,
                                 PAYTX_CRASH_AT="coordinator.after_log_commit@2")
        self.d.start_coordinator("coord-b", PAYTX_LEASE_MS=2000)
        self.d.wait_consumers("paytx.submit", 2)  # or one may take every submit
        corrs = {("many-%d" % i): self.d.submit(self.pay("many-%d" % i, 10)) for i in range(20)}
        self.d.wait_for(lambda: not self.d.alive("coord-a"), what="coord-a to crash")
        owners = self.d.query("coord", "SELECT DISTINCT owner FROM payments "
                                       "WHERE payment_id LIKE 'many-%%'")
        self.assertIn((self.d.name + "-coord-a",), owners)  # it had payments to lose
        outs = {pid: self.d.wait_reply(c, timeout=40)[0] for pid, c in corrs.items()}
        self.d.wait_for(lambda: self.d.query(
            "coord", "SELECT count(*) FROM payments WHERE state IN "
                     "('preparing', 'committing', 'aborting')") == [(0,)],
            timeout=40, what="every payment finished")
        committed = [p for p, o in outs.items() if o["status"] == "committed"]
        for pid, out in outs.items():
            self.assertEqual(self.state(pid), out["status"], pid)
        self.assertEqual(self.d.balance(self.b)[0], 10 * len(committed))
        adopted = self.d.log_text("coord-b").count("adopted in state")
        self.assertGreater(adopted, 0)
        self.d.check_invariants(self)

    def test_participant_in_doubt_gets_the_decision_from_another_coordinator(self):
        # coord-a logs commit and dies before sending it; its lease is long,
        # so nobody adopts the payment. The ledgers hold reservations, ask
        # paytx.status, and coord-b answers from the log.
        self.d.wait_outcomes_marked()  # @2 counts log commits
        self.d.stop("coord-a")
        self.d.start_coordinator("coord-a", PAYTX_LEASE_MS=600000,
                                 PAYTX_CRASH_AT="coordinator.after_log_commit@2")
        self.d.submit(self.pay("doubt-1"))
        self.d.wait_for(lambda: not self.d.alive("coord-a"), what="coord-a to crash")
        self.assertEqual(self.state("doubt-1"), "committing")
        self.assertEqual(self.d.balance(self.a), (100000, 100))  # reserved, in doubt
        self.d.start_coordinator("coord-b", PAYTX_LEASE_MS=600000)
        # each shard asks on its own schedule
        self.d.wait_for(lambda: (self.d.balance(self.a), self.d.balance(self.b)) ==
                        ((99900, 0), (100, 0)), timeout=20,
                        what="the in-doubt commit to be applied on both shards")
        self.assertEqual(self.state("doubt-1"), "committing")  # still a's to finish
        self.assertIn("asking for the decision", self.d.log_text("ledger.1"))
        self.d.check_invariants(self, settle=False)  # a's payment stays a's, by design

    def test_two_coordinators_cannot_log_different_decisions(self):
        # coord-a is paused after logging the payment; coord-b adopts it once
        # the lease expires and presumes abort. When coord-a resumes with all
        # the yes votes it tries to log commit: the log keeps the abort.
        self.d.stop("coord-a")
        self.d.start_coordinator("coord-a", PAYTX_LEASE_MS=2000,
                                 PAYTX_PREPARE_TIMEOUT_MS=60000)
        self.d.procs["ledger.1"].send_signal(signal.SIGSTOP)
        corr = self.d.submit(self.pay("race-1"))
        self.d.wait_for(lambda: self.state("race-1") == "preparing", what="payment logged")
        time.sleep(0.5)  # let coord-a send its prepares and take ledger.0's vote
        self.d.procs["coord-a"].send_signal(signal.SIGSTOP)
        self.d.start_coordinator("coord-b", PAYTX_LEASE_MS=2000)
        self.d.wait_for(lambda: self.state("race-1") in ("aborting", "aborted"),
                        timeout=20, what="coord-b to adopt and abort")
        self.d.procs["ledger.1"].send_signal(signal.SIGCONT)
        time.sleep(1)  # ledger.1 votes yes to coord-a, then applies coord-b's abort
        self.d.procs["coord-a"].send_signal(signal.SIGCONT)
        out, _ = self.d.wait_reply(corr, timeout=30)
        self.assertEqual(out["status"], "aborted")
        self.d.wait_for(lambda: self.state("race-1") == "aborted", timeout=30,
                        what="payment finished")
        decisions = self.d.query("coord", "SELECT commit FROM decisions d JOIN payments p "
                                          "USING (txn) WHERE payment_id = 'race-1'")
        self.assertEqual(decisions, [(False,)])
        self.assertEqual(self.d.balance(self.b), (0, 0))
        self.assertEqual(self.d.balance(self.a), (100000, 0))
        # coord-a's replies (a late outcome, if any) must agree
        while True:
            try:
                extra, _ = self.d.wait_reply(corr, timeout=2)
            except AssertionError:
                break
            self.assertEqual(extra["status"], "aborted")
        self.d.check_invariants(self)

    def test_duplicated_protocol_messages_change_nothing(self):
        for name in ("coord-a", "ledger.0", "ledger.1"):
            self.d.stop(name)
        dup = {"PAYTX_FAULT_DUPLICATE_PCT": 60}
        self.d.start_ledger("ledger.0", PAYTX_FAULT_SEED=1, **dup)
        self.d.start_ledger("ledger.1", PAYTX_FAULT_SEED=2, **dup)
        self.d.start_coordinator("coord-a", PAYTX_FAULT_SEED=3, **dup)
        self.d.start_coordinator("coord-b", PAYTX_FAULT_SEED=4, **dup)
        corrs = {}
        for i in range(40):
            amount = 200000 if i % 10 == 3 else 100  # more than alice ever has
            corrs["dup-%d" % i] = self.d.submit(self.pay("dup-%d" % i, amount))
        outs = {pid: self.d.wait_reply(c, timeout=40)[0] for pid, c in corrs.items()}
        committed = sum(o["status"] == "committed" for o in outs.values())
        self.assertEqual(committed, 36)
        self.assertEqual({o["reason"] for o in outs.values() if o["status"] != "committed"},
                         {"insufficient_funds"})
        self.d.wait_for(lambda: self.d.query(
            "coord", "SELECT count(*) FROM payments WHERE state IN "
                     "('preparing', 'committing', 'aborting')") == [(0,)],
            timeout=40, what="every payment finished")
        self.assertEqual(self.d.balance(self.b)[0], 100 * committed)
        journal = self.d.journal(self.b)
        self.assertEqual(len(journal), committed)
        self.assertEqual(len(set(journal)), committed)  # no payment posted twice
        self.d.check_invariants(self)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Upgrading the coordinator log from schema 2 (one table `payments`) to 3
(payment_requests + payment_states, the view `payments`): a payment left in
flight by a coordinator of the old layout is adopted and finished after the
migration, finished ones keep answering duplicates and status, and
migrating again changes nothing."""
import os

import psycopg2

from harness import PaytxTestCase, main

V2_SQL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "coordinator_v2.sql")
COLS = ("payment_id, txn, request_hash, request, metadata, state, reason, detail, reply_to, "
        "correlation_id, waiters, outcome_sent, owner, lease_until, submitted_at, "
        "decided_at, finished_at, participants, traceparent")
READ = COLS.replace("waiters", "waiters::text")


class LogUpgrade(PaytxTestCase):

    start_services = False

    def setUp(self):
        super().setUp()
        self.d.ctl("migrate")
        self.d.start_ledger("ledger.0")
        self.d.start_ledger("ledger.1")
        self.d.start_coordinator("coord-a", PAYTX_LEASE_MS=2000)
        self.alice_and_bob(1000)

    def pay(self, pid, amount):
        return {"payment_id": pid, "from": self.a, "to": self.b, "amount": amount,
                "currency": "EUR"}

    def run_sql(self, role, sql, args=None):
        c = psycopg2.connect(self.d.dsn("coord", role))
        try:
            with c, c.cursor() as cur:
                cur.execute(sql, args)
        finally:
            c.close()

    def back_to_schema_2(self):
        """Rebuild the log in the old layout with the same rows, as the
        release before version 3 would have left it."""
        rows = self.d.query("coord", "SELECT %s FROM payments ORDER BY txn" % READ)
        self.run_sql(None, "DROP VIEW payments; DROP TABLE payment_states, payment_requests")
        with open(V2_SQL) as f:
            self.run_sql("owner", f.read())
        marks = ", ".join(["%s"] * len(COLS.split(",")))
        for row in rows:
            self.run_sql(None, "INSERT INTO payments (%s) VALUES (%s)" % (COLS, marks), row)
        self.assertEqual(self.d.query("coord", "SELECT version FROM paytx_schema"), [(2,)])
        return rows

    def test_old_layout_payment_in_flight_is_adopted_and_finished(self):
        done = self.d.pay_and_wait(self.pay("up-done", 10))
        self.assertEqual(done["status"], "committed")
        self.d.wait_outcomes_marked()  # @2 counts log commits
        self.d.stop("coord-a")
        # commit logged, nothing sent: the shards hold the reservation
        self.d.start_coordinator("coord-a", PAYTX_LEASE_MS=2000,
                                 PAYTX_CRASH_AT="coordinator.after_log_commit@2")
        corr = self.d.submit(self.pay("up-1", 100))
        self.d.wait_for(lambda: not self.d.alive("coord-a"), what="coord-a to crash")
        self.assertEqual(self.d.balance(self.a), (990, 100))  # held, in doubt
        rows = self.back_to_schema_2()
        self.assertIn("committing", [r[5] for r in rows])

        self.d.ctl("migrate")
        kinds = self.d.query("coord", "SELECT relname, relkind FROM pg_class WHERE relname IN "
                             "('payments', 'payment_requests', 'payment_states') ORDER BY 1")
        self.assertEqual(kinds, [("payment_requests", "r"), ("payment_states", "r"),
                                 ("payments", "v")])
        self.assertEqual(self.d.query("coord", "SELECT version FROM paytx_schema"), [(3,)])
        # the state columns left the request table; every row kept its state
        self.assertEqual(self.d.query("coord", "SELECT count(*) FROM pg_attribute WHERE "
                                      "attrelid = 'payment_requests'::regclass AND "
                                      "attname IN ('state', 'owner') AND NOT attisdropped"),
                         [(0,)])
        self.assertEqual(self.d.query("coord", "SELECT %s FROM payments ORDER BY txn" % READ),
                         rows)
        self.assertEqual(self.d.query("coord", "SELECT state, owner FROM payments WHERE "
                                      "payment_id = 'up-1'"),
                         [("committing", self.d.name + "-coord-a")])

        # another coordinator adopts it once the old lease has expired
        self.d.start_coordinator("coord-b", PAYTX_LEASE_MS=2000)
        out, _ = self.d.wait_reply(corr, timeout=40)
        self.assertEqual((out["payment_id"], out["status"]), ("up-1", "committed"))
        self.assertIn("adopted in state committing", self.d.log_text("coord-b"))
        self.assertEqual((self.d.balance(self.a), self.d.balance(self.b)), ((890, 0), (110, 0)))
        self.d.wait_outcomes_marked()
        self.assertEqual(self.d.query("coord", "SELECT state, owner, finished_at IS NOT NULL "
                                      "FROM payments WHERE payment_id = 'up-1'"),
                         [("committed", self.d.name + "-coord-b", True)])

        # what finished before the upgrade still answers duplicates and status
        dup = self.d.pay_and_wait(self.pay("up-done", 10))
        self.assertEqual((dup["status"], dup["txn"]), ("committed", done["txn"]))
        status = self.d.ctl("status", "up-done").stdout
        self.assertIn("committed", status)
        self.assertEqual(self.d.balance(self.b), (110, 0))  # no money moved again

        # migrating again is harmless, and new payments use the new layout
        before = self.d.query("coord", "SELECT %s FROM payments ORDER BY txn" % READ)
        self.d.ctl("migrate")
        self.assertEqual(self.d.query("coord", "SELECT %s FROM payments ORDER BY txn" % READ),
                         before)
        self.assertEqual(self.d.pay_and_wait(self.pay("up-2", 5))["status"], "committed")
        self.d.check_invariants(self)


if __name__ == "__main__":
    main()

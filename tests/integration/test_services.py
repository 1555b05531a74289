#!/usr/bin/env python3
"""RabbitMQ and PostgreSQL restarts: every process reconnects with backoff,
no submitted payment is lost, nothing spins while a service is down.

These restart the shared test services, so they run alone (meson runs the
integration tests one at a time)."""
import os
import signal
import subprocess
import time

from harness import PaytxTestCase, main

SERVICES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                        "scripts", "services.sh")
DAEMONS = ("coordinator", "ledger.0", "ledger.1")
# CPU a daemon may use while a service is down for several seconds: retries
# with backoff cost milliseconds; a busy loop would cost the whole window.
CPU_BUDGET_S = 1.0


def services(cmd):
    subprocess.run([SERVICES, cmd], check=True, stdout=subprocess.DEVNULL, timeout=180)


class Services(PaytxTestCase):

    def setUp(self):
        super().setUp()
        self.alice_and_bob(100000)

    def submit_many(self, prefix, n):
        ids = ["%s-%d" % (prefix, i) for i in range(n)]
        for pid in ids:  # persistent and confirmed: the broker has them
            self.d.submit({"payment_id": pid, "from": self.a, "to": self.b, "amount": 10,
                           "currency": "EUR"}, reply=False)
        return ids

    def wait_all_final(self, prefix, n, timeout=120):
        sql = ("SELECT count(*) FROM payments WHERE payment_id LIKE %s "
               "AND state IN ('committed', 'aborted')")
        self.d.wait_for(lambda: self.d.query("coord", sql, (prefix + "-%",)) == [(n,)],
                        timeout=timeout, what="all %d payments to finish" % n)
        return dict(self.d.query("coord", "SELECT payment_id, state FROM payments "
                                          "WHERE payment_id LIKE %s", (prefix + "-%",)))

    def assert_quiet_while_down(self, down_s):
        before = {n: self.d.cpu_seconds(n) for n in DAEMONS}
        time.sleep(down_s)
        for n in DAEMONS:
            self.assertTrue(self.d.alive(n), "%s died while a service was down" % n)
            used = self.d.cpu_seconds(n) - before[n]
            self.assertLess(used, CPU_BUDGET_S, "%s used %.2fs CPU in %ss" % (n, used, down_s))

    def test_rabbitmq_restart_loses_no_payment(self):
        ids = self.submit_many("rr", 30)
        self.addCleanup(services, "start")  # whatever happens next
        services("kill-rabbit")
        self.assert_quiet_while_down(6)
        services("start")
        self.d.connect_amqp()
        states = self.wait_all_final("rr", len(ids))
        # Protocol messages are not persistent: a payment whose prepare died
        # with the broker aborts on its deadline. None may be lost, and
        # every submit still queued at the kill must go through.
        self.assertEqual(len(states), len(ids))
        committed = sum(s == "committed" for s in states.values())
        self.assertGreater(committed, 0)
        self.assertEqual(self.d.balance(self.b), (10 * committed, 0))
        reasons = self.d.query("coord", "SELECT DISTINCT reason FROM payments WHERE "
                                        "payment_id LIKE 'rr-%%' AND state = 'aborted'")
        self.assertLessEqual(set(reasons), {("timeout",)})
        for n in DAEMONS:
            self.assertIn("reconnecting", self.d.log_text(n), n)
        out = self.d.pay_and_wait({"payment_id": "after-rr", "from": self.a, "to": self.b,
                                   "amount": 1, "currency": "EUR"})
        self.assertEqual(out["status"], "committed")
        self.d.check_invariants(self)

    def test_postgres_immediate_restart_loses_no_payment(self):
        ids = self.submit_many("pg", 30)
        self.addCleanup(services, "start")
        services("kill-pg")  # immediate shutdown: crash recovery on start
        self.assert_quiet_while_down(6)
        services("start")
        states = self.wait_all_final("pg", len(ids))
        # a payment caught mid-prepare may time out; none may be lost
        self.assertEqual(len(states), len(ids))
        committed = sum(s == "committed" for s in states.values())
        self.assertEqual(self.d.balance(self.b), (10 * committed, 0))
        self.assertGreater(committed, 0)
        out = self.d.pay_and_wait({"payment_id": "after-pg", "from": self.a, "to": self.b,
                                   "amount": 1, "currency": "EUR"})
        self.assertEqual(out["status"], "committed")
        self.d.check_invariants(self)

    def test_idle_coordinator_reconnects_to_postgres_and_adopts(self):
        # An idle coordinator must notice PostgreSQL came back by itself: it
        # has a dead peer's payment to adopt, and nothing else to do.
        self.d.stop("coordinator")
        self.d.stop("ledger.1")  # the payment can never get all its votes
        self.d.start_coordinator("c0", PAYTX_LEASE_MS=3000, PAYTX_PREPARE_TIMEOUT_MS=600000)
        self.d.submit({"payment_id": "idle-1", "from": self.a, "to": self.b, "amount": 100,
                       "currency": "EUR"}, reply=False)
        owner = lambda: self.d.query("coord", "SELECT owner, state FROM payments "
                                              "WHERE payment_id = 'idle-1'")
        self.d.wait_for(lambda: owner() == [(self.d.name + "-c0", "preparing")],
                        what="the payment preparing at c0")
        self.d.start_coordinator("c1", PAYTX_LEASE_MS=3000)
        time.sleep(2)
        self.addCleanup(services, "start")
        services("restart-pg")
        time.sleep(2)
        self.d.stop("c0", sig=signal.SIGKILL)
        self.d.wait_for(lambda: owner()[0][0] == self.d.name + "-c1", timeout=30,
                        what="c1 to adopt the dead coordinator's payment")
        self.d.start_ledger("ledger.1")
        self.d.wait_for(lambda: owner()[0][1] == "aborted", timeout=30,
                        what="the adopted payment to finish")
        self.assertEqual(self.d.balance(self.a), (100000, 0))
        self.d.check_invariants(self)


if __name__ == "__main__":
    main()

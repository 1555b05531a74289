#!/usr/bin/env python3
"""Participants and coordinators that are down or restart mid-transaction."""
import signal
import time

import pika.exceptions

from harness import PaytxTestCase, main


class Failures(PaytxTestCase):

    def setUp(self):
        super().setUp()
        self.alice_and_bob(1000)

    def pay(self, pid, amount=100):
        return {"payment_id": pid, "from": self.a, "to": self.b, "amount": amount,
                "currency": "EUR"}

    def test_participant_down_aborts_on_timeout_and_releases_the_hold(self):
        self.d.stop("ledger.1")
        t0 = time.time()
        out = self.d.pay_and_wait(self.pay("down-1"))
        self.assertEqual(out["status"], "aborted", out)
        self.assertEqual(out["reason"], "timeout")
        self.assertIn("ledger.1", out["detail"])
        self.assertGreater(time.time() - t0, 2.5)  # the 3 s prepare deadline
        # ledger.0 voted yes and held the funds; the abort releases them.
        self.d.wait_for(lambda: self.d.balance(self.a) == (1000, 0), what="hold released")
        # The abort waits in ledger.1's queue; once it is back it applies it
        # and acks, and the coordinator finishes the payment.
        self.d.start_ledger("ledger.1")
        self.assertEqual(self.d.query("coord", "SELECT state FROM payments "
                                      "WHERE payment_id = 'down-1'"), [("aborting",)])
        self.d.wait_for(lambda: self.d.query("coord", "SELECT state FROM payments "
                                             "WHERE payment_id = 'down-1'") == [("aborted",)],
                        what="payment finished")
        txn = out["txn"]
        barrier = self.d.query("ledger.1", "SELECT state FROM barrier WHERE txn = %s", (txn,))
        self.assertEqual(barrier, [("aborted",)])
        out = self.d.pay_and_wait(self.pay("after-1"))
        self.assertEqual(out["status"], "committed")
        self.d.check_invariants(self)

    def test_a_deleted_participant_queue_is_declared_again(self):
        # RabbitMQ tells a consumer that its queue went away only when the
        # connection asked for consumer_cancel_notify; without it the ledger
        # would quietly stop consuming for good.
        self.d.wait_consumers("ledger.1", 1)
        self.d.admin_ch.queue_delete("ledger.1")

        def consumed():
            try:
                return self.d.admin_ch.queue_declare("ledger.1", passive=True).method \
                    .consumer_count == 1
            except pika.exceptions.ChannelClosedByBroker:   # not declared again yet
                self.d.admin_ch = self.d.admin_conn.channel()
                self.d.admin_ch.confirm_delivery()
                return False
        self.d.wait_for(consumed, timeout=30, what="ledger.1 consuming its queue again")
        self.assertIn("cancelled a consumer", self.d.log_text("ledger.1"))
        self.assertEqual(self.d.pay_and_wait(self.pay("after-delete"))["status"], "committed")
        self.d.check_invariants(self)

    def test_participant_restarted_between_prepare_and_commit_commits(self):
        # ledger.1 dies right after its vote is confirmed and its prepare acked:
        # the reservation is durable, the commit waits for it.
        self.d.stop("ledger.1")
        self.d.start_ledger("ledger.1", PAYTX_CRASH_AT="participant.after_input_ack")
        corr = self.d.submit(self.pay("restart-1"))
        self.d.wait_for(lambda: not self.d.alive("ledger.1"), what="ledger.1 crash")
        self.assertEqual(self.d.procs["ledger.1"].returncode, -signal.SIGKILL)
        held = self.d.query("ledger.1", "SELECT state FROM barrier WHERE payment_id = 'restart-1'")
        self.assertEqual(held, [("prepared",)])
        self.d.stop("ledger.1")
        self.d.start_ledger("ledger.1")
        out, _ = self.d.wait_reply(corr)
        self.assertEqual(out["status"], "committed", out)
        self.assertEqual(self.d.balance(self.b), (100, 0))
        self.assertEqual(self.d.balance(self.a), (900, 0))
        self.d.check_invariants(self)

    def test_participant_killed_before_acking_commit_gets_it_again(self):
        # Crash after the commit is durable locally but before the ack is
        # published: the redelivered commit is applied once and acked.
        self.d.stop("ledger.1")
        self.d.start_ledger("ledger.1", PAYTX_CRASH_AT="participant.before_reply_confirm@2")
        corr = self.d.submit(self.pay("redeliver-1"))
        self.d.wait_for(lambda: not self.d.alive("ledger.1"), what="ledger.1 crash")
        self.d.stop("ledger.1")
        self.d.start_ledger("ledger.1")
        out, _ = self.d.wait_reply(corr)
        self.assertEqual(out["status"], "committed", out)
        self.assertEqual(self.d.journal(self.b), [("redeliver-1", 100)])
        self.d.check_invariants(self)

    def test_coordinator_restart_presumes_abort_without_a_decision(self):
        # Votes can never all arrive: ledger.1 is down. Kill the coordinator
        # while the payment is preparing; the restarted one aborts it.
        self.d.stop("ledger.1")
        corr = self.d.submit(self.pay("presumed-1"))
        self.d.wait_for(lambda: self.d.query("coord", "SELECT state FROM payments WHERE "
                                             "payment_id = 'presumed-1'") == [("preparing",)],
                        what="payment logged")
        self.d.stop("coordinator", sig=signal.SIGKILL)
        self.d.start_coordinator()
        self.d.start_ledger("ledger.1")
        out, _ = self.d.wait_reply(corr)
        self.assertEqual(out["status"], "aborted")
        self.assertEqual(out["reason"], "coordinator_recovery")
        self.d.wait_for(lambda: self.d.balance(self.a) == (1000, 0), what="hold released")
        self.d.check_invariants(self)

    def test_coordinator_restart_resends_a_logged_decision(self):
        # The coordinator dies right after logging commit, before sending it
        # (its log commits are counted: see wait_outcomes_marked).
        self.d.wait_outcomes_marked()
        self.d.stop("coordinator")
        self.d.start_coordinator(PAYTX_CRASH_AT="coordinator.after_log_commit@2")
        corr = self.d.submit(self.pay("resend-1"))
        self.d.wait_for(lambda: not self.d.alive("coordinator"), what="coordinator crash")
        self.assertEqual(self.d.query("coord", "SELECT state FROM payments WHERE "
                                      "payment_id = 'resend-1'"), [("committing",)])
        self.d.stop("coordinator")
        self.d.start_coordinator()
        out, _ = self.d.wait_reply(corr)
        self.assertEqual(out["status"], "committed", out)
        self.assertEqual(self.d.balance(self.b), (100, 0))
        self.d.check_invariants(self)


if __name__ == "__main__":
    main()

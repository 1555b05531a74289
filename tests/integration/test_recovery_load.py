#!/usr/bin/env python3
"""Recovery under load: a coordinator that adopts many unfinished payments
sends each decision once, not once per re-send period, while a participant
works through a long queue (src/coordinator/peers.h)."""
import signal

from harness import PaytxTestCase, accounts_on, main

N = 1500


class RecoveryLoad(PaytxTestCase):

    start_services = False

    def unfinished(self):
        return self.d.query("coord", "SELECT count(*) FROM payments WHERE state IN "
                                     "('preparing', 'committing', 'aborting')")[0][0]

    def test_adopted_decisions_are_sent_once_while_the_participant_catches_up(self):
        d = self.d
        d.ctl("migrate")
        a = accounts_on("ledger.0", "poor")[0]
        b = accounts_on("ledger.1", "payee")[0]
        d.account(a)
        d.account(b)
        # ledger.1 is down: every payment is refused by ledger.0 (no funds)
        # and its abort waits for ledger.1's ack.
        d.start_ledger("ledger.0")
        d.start_coordinator("coord", PAYTX_PREPARE_TIMEOUT_MS=1000)
        for i in range(N):
            d.submit({"payment_id": "load-%d" % i, "from": a, "to": b, "amount": 5,
                      "currency": "EUR"}, reply=False)
        d.wait_for(lambda: d.query("coord", "SELECT count(*) FROM payments "
                                            "WHERE state = 'aborting'")[0][0] == N,
                   timeout=60, what="every payment decided abort, unacknowledged")
        d.stop("coord", sig=signal.SIGKILL)
        # Count what the next coordinator sends ledger.1 from now on.
        d.admin_ch.queue_declare("capture-ledger.1", exclusive=True)
        d.admin_ch.queue_bind("capture-ledger.1", "paytx.participants", "ledger.1")
        d.start_ledger("ledger.1")
        d.start_coordinator("coord")  # same id: adopts them all at start-up
        d.wait_for(lambda: self.unfinished() == 0, timeout=90, what="every payment finished")
        sent = d.admin_ch.queue_declare("capture-ledger.1", passive=True).method.message_count
        # Fewer than N when acks to the first coordinator's aborts (ledger.1
        # works through them too) finish payments before they are adopted.
        self.assertGreater(sent, 0)
        # Before peers.h each abort went out about 3 times here.
        self.assertLessEqual(sent, N * 1.1, "aborts re-sent to a participant still catching up")
        self.assertEqual(d.balance(a), (0, 0))
        self.assertEqual(d.balance(b), (0, 0))
        d.check_invariants(self)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Kill a process at every named crash point, restart it, and check that the
payment reaches one consistent outcome on every participant.

Each crash point is a durable-write or publish boundary (see README). A
payment crosses each coordinator boundary at least three times (submit,
decision, completion) and each participant boundary twice (prepare,
decision), so @1 and @2 always fire during the payment under test."""
import signal

from harness import PaytxTestCase, main

COORDINATOR_POINTS = [
    "coordinator.before_log_commit",
    "coordinator.after_log_commit",
    "coordinator.before_publish_confirm",
    "coordinator.after_publish_confirm",
    "coordinator.after_input_ack",
]
PARTICIPANT_POINTS = [
    "participant.before_local_commit",
    "participant.after_local_commit",
    "participant.before_reply_confirm",
    "participant.after_reply_confirm",
    "participant.after_input_ack",
]


class CrashPoints(PaytxTestCase):

    def setUp(self):
        super().setUp()
        self.alice_and_bob(1000)

    def restart_with(self, name, point):
        self.d.stop(name)
        if name == "coordinator":
            self.d.start_coordinator(PAYTX_CRASH_AT=point)
        else:
            self.d.start_ledger(name, PAYTX_CRASH_AT=point)

    def crash_and_recover(self, name, point):
        self.restart_with(name, point)
        pid = "crash-%s" % point.replace("@", "-")
        corr = self.d.submit({"payment_id": pid, "from": self.a, "to": self.b,
                              "amount": 100, "currency": "EUR"})
        self.d.wait_for(lambda: not self.d.alive(name), timeout=20,
                        what="%s to reach %s" % (name, point))
        self.assertEqual(self.d.procs[name].returncode, -signal.SIGKILL)
        self.assertIn("crash point %s reached" % point.split("@")[0], self.d.log_text(name))
        self.d.stop(name)
        if name == "coordinator":
            self.d.start_coordinator()
        else:
            self.d.start_ledger(name)
        out, _ = self.d.wait_reply(corr, timeout=40)
        self.assertIn(out["status"], ("committed", "aborted"), out)
        final = "committed" if out["status"] == "committed" else "aborted"
        self.d.wait_for(lambda: self.d.query("coord", "SELECT state FROM payments WHERE "
                                             "payment_id = %s", (pid,)) == [(final,)],
                        timeout=40, what="every participant to ack")
        txn = out["txn"]
        for shard, account, amount in (("ledger.0", self.a, -100), ("ledger.1", self.b, 100)):
            rows = self.d.query(shard, "SELECT account, amount FROM entries WHERE txn = %s",
                                (txn,))
            barrier = self.d.query(shard, "SELECT state FROM barrier WHERE txn = %s", (txn,))
            if final == "committed":
                self.assertEqual(rows, [(account, amount)], shard)
                self.assertEqual(barrier, [("committed",)], shard)
            else:
                self.assertEqual(rows, [], shard)
                self.assertEqual(barrier, [("aborted",)], shard)
        self.d.check_invariants(self)


def _make(name, point):
    return lambda self: self.crash_and_recover(name, point)


for _point in COORDINATOR_POINTS:
    for _n in (1, 2):
        setattr(CrashPoints, "test_%s_%d" % (_point.replace(".", "_"), _n),
                _make("coordinator", "%s@%d" % (_point, _n)))
for _point in PARTICIPANT_POINTS:
    for _n in (1, 2):
        setattr(CrashPoints, "test_%s_%d" % (_point.replace(".", "_"), _n),
                _make("ledger.1", "%s@%d" % (_point, _n)))


if __name__ == "__main__":
    main()

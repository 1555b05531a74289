#!/usr/bin/env python3
"""PAYTX_QUEUE_TYPE=quorum: every process declares the shared durable
queues as quorum queues (reply queues stay classic), payments commit, abort
and dead-letter on them as on classic ones, a ledger restarted mid-run loses
nothing; and a process whose setting disagrees with an existing queue stops
at start-up with a message naming the setting, not a bare
PRECONDITION_FAILED."""
import json
import shlex
import signal
import subprocess
import time

import pika

from harness import RABBITMQCTL, PaytxTestCase, accounts_on, main

SHARED = ["paytx.submit", "paytx.status", "paytx.dead", "ledger.0", "ledger.1"]
WITH_DLX = ["paytx.submit", "paytx.status", "ledger.0", "ledger.1"]


def list_queues(vhost):
    """{name: (type, {argument: value})} as RabbitMQ itself reports them."""
    out = subprocess.run([*shlex.split(RABBITMQCTL), "-q", "--formatter", "json",
                          "list_queues", "-p", vhost, "name", "type", "arguments"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return {q["name"]: (q["type"], {a[0]: a[2] for a in q["arguments"]})
            for q in json.loads(out)}


class QuorumQueues(PaytxTestCase):

    queue_type = "quorum"

    def setUp(self):
        super().setUp()
        self.coordinator_reply = "paytx.reply.%s-coordinator" % self.d.name
        # the coordinator declares paytx.status and its reply queue itself
        self.d.wait_for(lambda: self.consumers("paytx.status") >= 1, what="paytx.status")
        self.d.wait_for(lambda: self.consumers(self.coordinator_reply) >= 1,
                        what=self.coordinator_reply)

    def consumers(self, queue):
        """Consumers on queue, 0 while it does not exist (a passive declare of
        a missing queue closes the channel: a throw-away one)."""
        ch = self.d.admin_conn.channel()
        try:
            return ch.queue_declare(queue, passive=True).method.consumer_count
        except pika.exceptions.ChannelClosedByBroker:
            return 0
        finally:
            if ch.is_open:
                ch.close()

    def test_shared_queues_are_quorum_and_reply_queues_classic(self):
        queues = list_queues(self.d.vhost)
        for name in SHARED:
            self.assertIn(name, queues)
            self.assertEqual(queues[name][0], "quorum", name)
        for name in WITH_DLX:
            args = queues[name][1]
            self.assertEqual(args.get("x-dead-letter-exchange"), "paytx.dlx", name)
            self.assertEqual(args.get("x-dead-letter-strategy"), "at-least-once", name)
            self.assertEqual(args.get("x-overflow"), "reject-publish", name)
        self.assertNotIn("x-dead-letter-strategy", queues["paytx.dead"][1])
        # non-durable, expiring: cannot be quorum queues
        self.assertEqual(queues[self.coordinator_reply][0], "classic")
        self.assertIn("x-expires", queues[self.coordinator_reply][1])
        self.assertEqual(queues[self.d.reply_queue][0], "classic")

    def test_commit_abort_and_dead_letter_on_quorum_queues(self):
        a, b = self.alice_and_bob(1000)
        out = self.d.pay_and_wait({"payment_id": "q-commit", "from": a, "to": b,
                                   "amount": 300, "currency": "EUR"})
        self.assertEqual(out["status"], "committed", out)
        out = self.d.pay_and_wait({"payment_id": "q-abort", "from": a, "to": b,
                                   "amount": 5000, "currency": "EUR"})
        self.assertEqual((out["status"], out["reason"]), ("aborted", "insufficient_funds"), out)
        corr = self.d.publish_raw("{not json")
        out, _ = self.d.wait_reply(corr)
        self.assertEqual(out["status"], "rejected", out)
        self.d.wait_for(lambda: self.d.dead_count() == 1, what="the dead letter")
        props, body = self.d.dead_letters()[0]
        self.assertEqual(body, b"{not json")
        self.assertEqual(props.headers["x-paytx-error-code"], "malformed_json")
        self.assertEqual(props.headers["x-paytx-origin-queue"], "paytx.submit")
        # paytxctl's private reply queue is classic, next to the quorum ones
        r = self.d.ctl("pay", "q-ctl", a, b, "50", "EUR")
        self.assertIn("q-ctl: committed", r.stdout)
        self.assertEqual(self.d.balance(a), (650, 0))
        self.assertEqual(self.d.balance(b), (350, 0))
        self.d.check_invariants(self)

    def test_broker_dead_letters_from_a_quorum_queue_reach_paytx_dead(self):
        # What RabbitMQ itself dead-letters (a reject here; a delivery-limit
        # or TTL policy an operator adds) goes through paytx.dlx, at least once.
        self.d.stop("ledger.0")
        self.d.admin_ch.basic_publish("", "ledger.0", b"poison")
        method = None
        deadline = time.time() + 10
        while method is None and time.time() < deadline:
            method, _, body = self.d.admin_ch.basic_get("ledger.0")
        self.assertIsNotNone(method, "the message on ledger.0")
        self.d.admin_ch.basic_reject(method.delivery_tag, requeue=False)
        self.d.wait_for(lambda: self.d.dead_count() == 1, what="the broker's dead letter")
        props, body = self.d.dead_letters()[0]
        self.assertEqual(body, b"poison")
        self.assertEqual(props.headers["x-first-death-queue"], "ledger.0")
        self.assertEqual(props.headers["x-first-death-reason"], "rejected")

    def test_ledger_restarted_mid_run_loses_nothing(self):
        payers = accounts_on("ledger.0", "payer", 4)
        payees = accounts_on("ledger.1", "payee", 4)
        for x in payers:
            self.d.account(x)
            self.d.fund(x, 1000)
        for x in payees:
            self.d.account(x)
        corrs = {}
        for i in range(40):
            if i == 10:
                self.d.stop("ledger.1", sig=signal.SIGKILL)
            if i == 25:
                time.sleep(1)   # prepares and decisions wait in the quorum queue
                self.d.start_ledger("ledger.1")
            pid = "q-run-%d" % i
            corrs[pid] = self.d.submit({"payment_id": pid, "from": payers[i % 4],
                                        "to": payees[i % 4], "amount": 10 + i,
                                        "currency": "EUR"})
        outcomes = {pid: self.d.wait_reply(corr, timeout=60)[0]["status"]
                    for pid, corr in corrs.items()}
        self.assertEqual(set(outcomes.values()) - {"committed", "aborted"}, set(), outcomes)
        self.assertIn("committed", outcomes.values())
        self.d.check_invariants(self)
        committed = {pid for pid, s in outcomes.items() if s == "committed"}
        moved = sum(10 + int(pid.rsplit("-", 1)[1]) for pid in committed)
        self.assertEqual(sum(self.d.balance(x)[0] for x in payees), moved)
        self.assertEqual(self.d.dead_count(), 0)
        # the restarted ledger re-declared its queue as the quorum queue it is
        self.assertEqual(list_queues(self.d.vhost)["ledger.1"][0], "quorum")

    def test_queue_replaced_by_the_other_type_stops_the_process_at_reconnect(self):
        # Someone deletes ledger.0 and makes it again as a classic queue.
        # RabbitMQ tells the ledger its queue went away (basic.cancel); it
        # reconnects and its declare is refused: the same configuration error
        # as at start-up, not an outage to wait out. The ledger is paused
        # meanwhile, so its own declare cannot come between the two.
        proc = self.d.procs["ledger.0"]
        proc.send_signal(signal.SIGSTOP)
        try:
            self.d.admin_ch.queue_delete("ledger.0")
            self.d.admin_ch.queue_declare("ledger.0", durable=True,
                                          arguments={"x-dead-letter-exchange": "paytx.dlx"})
        finally:
            proc.send_signal(signal.SIGCONT)
        try:
            rc = proc.wait(30)
        finally:
            self.d.procs.pop("ledger.0")
            self.d.logs.pop("ledger.0").close()
        log = self.d.log_text("ledger.0")
        self.assertEqual(rc, 1, log)
        self.assertIn("queue ledger.0 exists as a classic queue but PAYTX_QUEUE_TYPE is "
                      "quorum", log)
        self.assertEqual(list_queues(self.d.vhost)["ledger.0"][0], "classic")


class QueueTypeMismatch:
    """The queues exist as one type (declared by the harness, as a previous
    deployment would have); a process configured for the other refuses to
    start."""

    start_services = False

    def refused(self, name, start, want, have, queue):
        proc = start()
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.fail("%s kept running with PAYTX_QUEUE_TYPE=%s on a %s queue" %
                      (name, want, have))
        finally:
            self.d.procs.pop(name)
            self.d.logs.pop(name).close()
        log = self.d.log_text(name)
        self.assertNotEqual(rc, 0, log)
        self.assertIn("queue %s exists as a %s queue but PAYTX_QUEUE_TYPE is %s" %
                      (queue, have, want), log)
        self.assertIn("PAYTX_QUEUE_TYPE=%s" % have, log)
        self.assertNotIn("PRECONDITION_FAILED", log)
        # said once, not retried with backoff like an outage
        self.assertNotIn("retrying", log)
        self.assertEqual(list_queues(self.d.vhost)[queue][0], have)

    def test_process_of_the_other_type_exits_naming_the_setting(self):
        want = "classic" if self.queue_type == "quorum" else "quorum"
        self.d.ctl("migrate")
        self.refused("ledger.0", lambda: self.d.start_ledger(
            "ledger.0", PAYTX_QUEUE_TYPE=want), want, self.queue_type, "ledger.0")
        self.refused("coordinator", lambda: self.d.start_coordinator(
            PAYTX_QUEUE_TYPE=want), want, self.queue_type, "paytx.dead")
        # with the setting that matches, the same processes start and pay
        self.d.start_all()
        a, b = self.alice_and_bob(100)
        out = self.d.pay_and_wait({"payment_id": "after-fix", "from": a, "to": b,
                                   "amount": 40, "currency": "EUR"})
        self.assertEqual(out["status"], "committed", out)
        self.d.check_invariants(self)


class QuorumProcessOnClassicQueues(QueueTypeMismatch, PaytxTestCase):
    queue_type = "classic"


class ClassicProcessOnQuorumQueues(QueueTypeMismatch, PaytxTestCase):
    queue_type = "quorum"


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""RabbitMQ users per role (docker/rabbitmq-definitions.json): each one can
do its part and nothing that would let it reach another role's messages.

A refusal is RabbitMQ closing the channel with 403 ACCESS_REFUSED; publishes
go through a channel in confirm mode, so the close is seen at the publish
and not, at random, by some later call."""
import json
import shlex
import subprocess
import time

import pika

from harness import (CLIENT_USER, COORDINATOR_USER, OPERATOR_USER, RABBITMQCTL,
                     PaytxTestCase, main, participant_user)


class RabbitRoles(PaytxTestCase):

    def setUp(self):
        super().setUp()
        self.conns = []
        self.addCleanup(self.close_conns)
        for shard in self.d.shards:  # the daemons declared and consume what they must
            self.d.wait_consumers(shard, 1)
        self.d.wait_consumers("paytx.submit", 1)

    def close_conns(self):
        for c in self.conns:
            try:
                c.close()
            except Exception:
                pass

    def channel(self, user):
        conn = pika.BlockingConnection(pika.URLParameters(self.d.role_url(user)))
        self.conns.append(conn)
        ch = conn.channel()
        ch.confirm_delivery()
        return ch

    def assert_refused(self, user, action, what):
        ch = self.channel(user)
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker, msg=what) as cm:
            action(ch)
        self.assertEqual(cm.exception.reply_code, 403, "%s: %s" % (what, cm.exception))
        self.assertIn("ACCESS_REFUSED", cm.exception.reply_text)

    @staticmethod
    def publish(exchange, key):
        body = json.dumps({"txn": 1, "payment_id": "x"}).encode()
        return lambda ch: ch.basic_publish(exchange, key, body,
                                           pika.BasicProperties(type="txn.commit"))

    @staticmethod
    def consume(queue):
        return lambda ch: ch.basic_consume(queue, lambda *a: None)

    @staticmethod
    def get(queue):
        return lambda ch: ch.basic_get(queue, auto_ack=False)

    def test_client_cannot_publish_to_participants(self):
        self.assert_refused(CLIENT_USER, self.publish("paytx.participants", "ledger.0"),
                            "client publishes to paytx.participants")

    def test_client_cannot_use_the_default_exchange(self):
        for queue in ("ledger.0", "paytx.submit", "paytx.reply.%s-coordinator" % self.d.name):
            self.assert_refused(CLIENT_USER, self.publish("", queue),
                                "client publishes to %s via the default exchange" % queue)

    def test_client_cannot_read_participant_queues(self):
        for shard in self.d.shards:
            self.assert_refused(CLIENT_USER, self.get(shard), "client basic.get " + shard)
            self.assert_refused(CLIENT_USER, self.consume(shard), "client consumes " + shard)

    def test_client_cannot_read_submits_or_dead_letters(self):
        for queue in ("paytx.submit", "paytx.dead", "paytx.status"):
            self.assert_refused(CLIENT_USER, self.get(queue), "client basic.get " + queue)

    def test_client_cannot_redeclare_or_rebind_the_topology(self):
        self.assert_refused(CLIENT_USER, lambda ch: ch.queue_declare(
            "ledger.0", durable=True, arguments={"x-dead-letter-exchange": "paytx.dlx"}),
            "client declares ledger.0")

        def bind_own_queue(ch):
            queue = ch.queue_declare("", exclusive=True).method.queue   # allowed
            ch.queue_bind(queue, "paytx.participants", "ledger.0")

        self.assert_refused(CLIENT_USER, bind_own_queue,
                            "client binds its queue to paytx.participants")

    def test_participant_cannot_consume_the_submit_queue(self):
        user = participant_user("ledger.0")
        self.assert_refused(user, self.get("paytx.submit"), "ledger.0 basic.get paytx.submit")
        self.assert_refused(user, self.consume("paytx.submit"), "ledger.0 consumes paytx.submit")

    def test_participant_cannot_read_another_participant_or_dead_letters(self):
        user = participant_user("ledger.0")
        self.assert_refused(user, self.consume("ledger.1"), "ledger.0 consumes ledger.1")
        self.assert_refused(user, self.get("paytx.dead"), "ledger.0 basic.get paytx.dead")
        self.assert_refused(user, lambda ch: ch.queue_bind("ledger.0", "paytx.participants",
                                                           "ledger.1"),
                            "ledger.0 binds its queue to ledger.1's routing key")
        self.assert_refused(user, self.publish("paytx.participants", "ledger.1"),
                            "ledger.0 publishes to paytx.participants")

    def test_operator_reads_only_dead_letters_and_writes_only_submits(self):
        # what paytxctl dead needs: basic.get on paytx.dead, publish to paytx.submit
        ch = self.channel(OPERATOR_USER)
        self.assertIsNone(ch.basic_get("paytx.dead", auto_ack=False)[0])
        ch.basic_publish("paytx.submit", "", b"{not json",
                         pika.BasicProperties(content_type="application/json"))
        self.d.wait_for(lambda: self.d.dead_count() == 1, what="the operator's submit")
        for queue in ("paytx.submit", "ledger.0", "paytx.status",
                      "paytx.reply.%s-coordinator" % self.d.name):
            self.assert_refused(OPERATOR_USER, self.get(queue), "operator basic.get " + queue)
        self.assert_refused(OPERATOR_USER, self.consume("ledger.1"), "operator consumes ledger.1")
        self.assert_refused(OPERATOR_USER, self.publish("paytx.participants", "ledger.0"),
                            "operator publishes to paytx.participants")
        self.assert_refused(OPERATOR_USER, self.publish("", "ledger.0"),
                            "operator publishes through the default exchange")
        self.assert_refused(OPERATOR_USER, self.publish("paytx.dlx", ""),
                            "operator publishes to paytx.dlx")
        self.assert_refused(OPERATOR_USER, lambda ch: ch.queue_declare("", exclusive=True),
                            "operator declares a queue")
        self.assert_refused(OPERATOR_USER, lambda ch: ch.queue_bind(
            "paytx.submit", "paytx.events", "payment.#"), "operator binds events to submits")
        self.assertEqual(self.d.dead_count(), 1)

    def test_cache_user_serves_balances_and_reads_nothing_else(self):
        """paytx-cache consumes its queue and paytx.balance; the client may
        ask for a balance but not read the queries, nor the cache the rest."""
        self.d.start_cache()
        self.d.wait_consumers("paytx.balance", 1)
        self.d.wait_consumers("cache", 1)
        user = participant_user("cache")
        for queue in ("paytx.submit", "paytx.dead", "ledger.0"):
            self.assert_refused(user, self.get(queue), "cache basic.get " + queue)
        self.assert_refused(user, self.publish("paytx.participants", "ledger.0"),
                            "cache publishes to paytx.participants")
        self.assert_refused(user, self.publish("paytx.events", "payment.committed"),
                            "cache publishes an event")
        self.assert_refused(CLIENT_USER, self.get("paytx.balance"),
                            "client reads others' balance queries")
        self.assert_refused(CLIENT_USER, self.consume("cache"), "client consumes cache")
        a, _ = self.alice_and_bob(funds=100)
        out = self.d.balance_query(a)   # as the client user
        self.assertEqual((out["account"], out["balance"]), (a, 100), out)
        self.assertEqual(self.d.balance_query("nobody")["error"], "not_found")
        self.d.check_invariants(self)

    def test_client_routing_events_into_submits_makes_no_loop(self):
        # Permissions cannot refuse this bind (write on the name paytx.submit,
        # read on paytx.events). Were each refused event answered with a
        # payment.rejected event, one payment would loop forever.
        self.channel(CLIENT_USER).queue_bind("paytx.submit", "paytx.events", "#")
        self.addCleanup(self.d.admin_ch.queue_unbind, "paytx.submit", "paytx.events", "#")
        a, b = self.alice_and_bob(funds=100)   # one payment.committed event
        out = self.d.pay_and_wait({"payment_id": "loop-1", "from": a, "to": b, "amount": 1,
                                   "currency": "EUR"})
        self.assertEqual(out["status"], "committed", out)
        self.d.wait_for(lambda: self.d.dead_count() >= 2, what="2 dead letters")
        time.sleep(2)
        dead = self.d.dead_letters()
        self.assertEqual([p.headers["x-paytx-error-code"] for p, _ in dead],
                         ["unknown_message_type"] * 2)
        self.assertEqual([k for k, _ in self.d.events()], ["payment.committed"] * 2)
        self.d.check_invariants(self)

    def test_payment_commits_with_every_process_on_its_own_user(self):
        a, b = self.alice_and_bob(funds=100)
        out = self.d.pay_and_wait({"payment_id": "roles-1", "from": a, "to": b, "amount": 40,
                                   "currency": "EUR"})
        self.assertEqual(out["status"], "committed", out)
        ok = self.d.ctl("pay", "roles-2", a, b, "10", "EUR")   # paytxctl, as the client
        self.assertIn("committed", ok.stdout)
        self.assertEqual(self.d.balance(b), (50, 0))
        r = subprocess.run([*shlex.split(RABBITMQCTL), "list_connections", "--silent",
                            "vhost", "user"], check=True, capture_output=True, text=True,
                           timeout=60)
        users = {line.split("\t")[1] for line in r.stdout.splitlines()
                 if line.split("\t")[0] == self.d.vhost}
        admin = pika.URLParameters(self.d.admin_url).credentials.username
        self.assertEqual(users, {CLIENT_USER, COORDINATOR_USER, admin} |
                         {participant_user(s) for s in self.d.shards})
        self.assertEqual(self.d.dead_letters(), [])
        self.d.check_invariants(self)


if __name__ == "__main__":
    main()

"""paytxctl for operators: in-flight and in-doubt payments built for real,
dead letters listed without being consumed and replayed after a fix,
journals, --help everywhere, and exit codes."""
import json
import os
import subprocess
import uuid

import pika

from harness import BUILD, PaytxTestCase, main

COMMANDS = ["migrate", "account", "balance", "journal", "pay", "submit", "status", "list",
            "dead", "limit"]


class CtlCommandLine(PaytxTestCase):
    start_services = False

    def test_help_on_every_command_exits_0(self):
        r = self.d.ctl("--help")
        self.assertIn("dead list|show|replay", r.stdout)
        for cmd in COMMANDS:
            r = self.d.ctl(cmd, "--help")
            self.assertTrue(r.stdout.startswith("usage: paytxctl " + cmd), (cmd, r.stdout))
        for argv in (["dead", "replay", "--help"], ["list", "in-doubt", "-h"],
                     ["limit", "set", "--help"], ["account", "create", "--help"]):
            r = self.d.ctl(*argv)
            self.assertIn("usage: paytxctl " + argv[0], r.stdout)
        self.assertIn("in-doubt  decided but not yet applied", self.d.ctl("list", "--help").stdout)

    def test_usage_errors_exit_2_with_a_hint(self):
        for argv in (["frobnicate"], ["--frobnicate", "status", "x"], ["list"],
                     ["list", "undecided"], ["list", "inflight", "--limit", "-1"],
                     ["list", "inflight", "--older-than", "soon"], ["journal"],
                     ["journal", "a", "b"], ["balance", "a", "--limit", "3"],
                     ["status", "p", "--all"], ["dead"], ["dead", "purge"],
                     ["dead", "show"], ["dead", "replay"], ["dead", "list", "--all"],
                     ["dead", "replay", "1", "--all"], ["dead", "show", "1", "--dry-run"],
                     ["pay", "p", "a", "b", "-5", "EUR"], []):
            r = self.d.ctl(*argv, check=False)
            self.assertEqual(r.returncode, 2, (argv, r.stdout, r.stderr))
            self.assertTrue(r.stderr.strip(), argv)
            self.assertLessEqual(len([l for l in r.stderr.splitlines()
                                      if l.startswith("paytxctl") or l.startswith("usage")
                                      or l.startswith("unknown")]), 1, (argv, r.stderr))


class CtlReads(PaytxTestCase):
    def test_not_found_exits_6(self):
        for argv in (["status", "no-such-payment"], ["balance", "no-such-account"],
                     ["journal", "no-such-account"], ["dead", "show", "no-such-message"],
                     ["dead", "show", "1"], ["dead", "replay", "no-such-message"]):
            r = self.d.ctl(*argv, check=False)
            self.assertEqual(r.returncode, 6, (argv, r.stdout, r.stderr))

    def test_journal_shows_the_entries_newest_first(self):
        a, b = self.alice_and_bob(funds=1000)
        out = self.d.pay_and_wait({"payment_id": "j-1", "from": a, "to": b, "amount": 300,
                                   "currency": "EUR"})
        self.assertEqual(out["status"], "committed")
        j = json.loads(self.d.ctl("journal", a, "--json").stdout)
        self.assertEqual(j["account"], a)
        self.assertEqual(j["currency"], "EUR")
        self.assertEqual([(e["payment_id"], e["amount"], e["balance_after"])
                          for e in j["entries"]][0], ("j-1", -300, 700))
        self.assertEqual(len(j["entries"]), 2)   # the funding, then j-1
        self.assertEqual(j["entries"][1]["amount"], 1000)
        self.assertGreater(j["entries"][0]["txn"], j["entries"][1]["txn"])
        db = self.d.journal(a)
        self.assertEqual(len(db), 2)
        one = json.loads(self.d.ctl("journal", a, "--limit", "1", "--json").stdout)
        self.assertEqual(len(one["entries"]), 1)
        text = self.d.ctl("journal", b).stdout
        self.assertIn("j-1", text)
        self.assertIn("1 entries of %s" % b, text)
        self.assertEqual(json.loads(self.d.ctl("journal", b, "--limit", "0",
                                               "--json").stdout)["entries"][0]["amount"], 300)


class CtlOpenPayments(PaytxTestCase):
    coord_env = {"PAYTX_PREPARE_TIMEOUT_MS": 120000}

    def test_inflight_lists_a_payment_waiting_for_a_stopped_shard(self):
        a, b = self.alice_and_bob(funds=1000)
        self.d.stop("ledger.1")
        self.d.submit({"payment_id": "slow-1", "from": a, "to": b, "amount": 100,
                       "currency": "EUR"})
        self.d.wait_for(lambda: self.d.query("ledger.0", "SELECT state FROM barrier WHERE "
                                                "payment_id = 'slow-1'") == [("prepared",)],
                        what="ledger.0 voted")
        rows = json.loads(self.d.ctl("list", "inflight", "--json").stdout)
        self.assertEqual(len(rows), 1, rows)
        r = rows[0]
        self.assertEqual((r["payment_id"], r["state"]), ("slow-1", "preparing"))
        self.assertEqual(r["owner"], self.d.name + "-coordinator")
        self.assertEqual(r["missing"], ["ledger.1"])
        self.assertEqual({p["name"]: p["state"] for p in r["participants"]},
                         {"ledger.0": "prepared", "ledger.1": "none"})
        self.assertIsNone(r["decided_age_s"])
        self.assertGreaterEqual(r["age_s"], 0)
        text = self.d.ctl("list", "inflight").stdout
        self.assertIn("slow-1", text)
        self.assertIn("ledger.1=none", text)
        self.assertIn("1 in flight", text)
        self.assertEqual(json.loads(self.d.ctl("list", "in-doubt", "--json").stdout), [])
        # a participant whose database paytxctl cannot reach is unknown, so
        # missing; the log's participants win over paytxctl's own setting
        only0 = "ledger.0=%s,ledger.1=postgresql://nobody@127.0.0.1:1/none" % \
            self.d.dsn("ledger.0", "owner")
        r = subprocess.run([os.path.join(BUILD, "paytxctl"), "list", "inflight", "--json",
                            "--ledger-dsns", only0, "--participants", "fraud"],
                           env=self.d.env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual({p["name"]: p["state"] for p in json.loads(r.stdout)[0]["participants"]},
                         {"ledger.0": "prepared", "ledger.1": "unknown"})
        self.assertEqual(json.loads(r.stdout)[0]["missing"], ["ledger.1"])
        self.assertEqual(json.loads(self.d.ctl("list", "inflight", "--older-than", "3600",
                                               "--json").stdout), [])
        self.d.submit({"payment_id": "slow-2", "from": a, "to": b, "amount": 100,
                       "currency": "EUR"})
        self.d.wait_for(lambda: len(json.loads(self.d.ctl("list", "inflight",
                                                          "--json").stdout)) == 2,
                        what="two in flight")
        first = json.loads(self.d.ctl("list", "inflight", "--limit", "1", "--json").stdout)
        self.assertEqual([r["payment_id"] for r in first], ["slow-1"])
        # the shard comes back: both commit and nothing is open any more
        self.d.start_ledger("ledger.1")
        self.d.wait_for(lambda: self.d.ctl("status", "slow-2", check=False).stdout.find(
            "committed") >= 0, what="slow-2 committed")
        self.d.wait_for(lambda: json.loads(self.d.ctl("list", "inflight", "--json").stdout)
                        == [], what="nothing in flight")
        self.d.check_invariants(self)

    def test_in_doubt_lists_a_decision_a_shard_has_not_applied(self):
        a, b = self.alice_and_bob(funds=1000)
        # ledger.1 dies right after its yes vote is confirmed: the coordinator
        # decides commit, ledger.0 applies it, ledger.1 cannot
        self.d.stop("ledger.1")
        self.d.start_ledger("ledger.1", PAYTX_CRASH_AT="participant.after_reply_confirm")
        self.d.wait_consumers("ledger.1", 1)
        self.d.submit({"payment_id": "doubt-1", "from": a, "to": b, "amount": 100,
                       "currency": "EUR"})
        self.d.wait_for(lambda: not self.d.alive("ledger.1"), what="ledger.1 crashed")
        self.d.wait_for(lambda: self.d.query("ledger.0", "SELECT state FROM barrier WHERE "
                                                "payment_id = 'doubt-1'") == [("committed",)],
                        what="ledger.0 committed")
        rows = json.loads(self.d.ctl("list", "in-doubt", "--json").stdout)
        self.assertEqual(len(rows), 1, rows)
        r = rows[0]
        self.assertEqual((r["payment_id"], r["state"]), ("doubt-1", "committing"))
        self.assertEqual(r["missing"], ["ledger.1"])
        self.assertEqual({p["name"]: p["state"] for p in r["participants"]},
                         {"ledger.0": "committed", "ledger.1": "prepared"})
        self.assertGreaterEqual(r["decided_age_s"], 0)
        text = self.d.ctl("list", "in-doubt").stdout
        self.assertIn("doubt-1", text)
        self.assertIn("ledger.1=prepared", text)
        self.assertEqual(json.loads(self.d.ctl("list", "inflight", "--json").stdout), [])
        self.d.stop("ledger.1")
        self.d.start_ledger("ledger.1")
        self.d.wait_for(lambda: json.loads(self.d.ctl("list", "in-doubt", "--json").stdout)
                        == [], what="the decision applied everywhere")
        self.assertIn("committed", self.d.ctl("status", "doubt-1").stdout)
        self.d.check_invariants(self)


class CtlDeadLetters(PaytxTestCase):
    def dead(self, *args, check=True):
        return self.d.ctl("dead", *args, check=check)

    def listed(self):
        return json.loads(self.dead("list", "--json").stdout)

    def test_dead_letters_are_listed_without_loss_and_replayed_after_a_fix(self):
        a, b = self.alice_and_bob(funds=1000)
        # 1. a valid submit that expired while the coordinator was down (a
        # message-ttl policy): RabbitMQ dead-letters it with x-death
        self.d.stop("coordinator")
        self.d._ctl("set_policy", "-p", self.d.vhost, "--apply-to", "queues", "expire",
                    r"^paytx\.submit$", '{"message-ttl": 1}')
        corr = uuid.uuid4().hex
        self.d.publish_raw(json.dumps({"payment_id": "late-1", "from": a, "to": b,
                                       "amount": 250, "currency": "EUR"}),
                           pika.BasicProperties(content_type="application/json",
                                                delivery_mode=2, type="payment.submit",
                                                message_id="client-late-1",
                                                reply_to=self.d.reply_queue,
                                                correlation_id=corr))
        self.d.wait_for(lambda: self.d.dead_count() == 1, what="the submit expired")
        self.d._ctl("clear_policy", "-p", self.d.vhost, "expire")
        self.d.start_coordinator()
        # 2. a malformed submit, rejected by the coordinator
        self.d.submit({"payment_id": "bad-1", "from": a, "amount": 5, "currency": "EUR"})
        self.d.wait_for(lambda: self.d.dead_count() == 2, what="bad-1 rejected")
        # 3. an unsigned protocol message, refused by ledger.0
        self.d.admin_ch.basic_publish("paytx.participants", "ledger.0",
                                      json.dumps({"txn": 1}).encode(),
                                      pika.BasicProperties(type="txn.commit",
                                                           message_id="forged-1",
                                                           delivery_mode=2))
        self.d.wait_for(lambda: self.d.dead_count() == 3, what="three dead letters")

        listed = self.listed()
        self.assertEqual(listed["count"], 3)
        m = listed["messages"]
        self.assertEqual([x["position"] for x in m], [1, 2, 3])
        self.assertEqual((m[0]["message_id"], m[0]["code"], m[0]["origin_queue"],
                          m[0]["origin_exchange"], m[0]["payment_id"], m[0]["type"]),
                         ("client-late-1", "rabbitmq:expired", "paytx.submit", "paytx.submit",
                          "late-1", "payment.submit"))
        self.assertTrue(m[0]["replayable"])
        self.assertEqual((m[1]["code"], m[1]["origin_queue"], m[1]["payment_id"]),
                         ("missing_field", "paytx.submit", "bad-1"))
        self.assertIn("to", m[1]["text"])
        self.assertEqual((m[2]["message_id"], m[2]["type"], m[2]["code"], m[2]["origin_queue"],
                          m[2]["replayable"]),
                         ("forged-1", "txn.commit", "bad_signature", "ledger.0", False))
        # listing consumes nothing and keeps the order
        self.assertEqual(self.listed(), listed)
        self.assertEqual(self.d.dead_count(), 3)
        text = self.dead("list").stdout
        self.assertIn("3 dead letters", text)
        self.assertLess(text.index("client-late-1"), text.index("forged-1"))
        first = json.loads(self.dead("list", "--limit", "1", "--json").stdout)
        self.assertEqual((first["count"], [x["message_id"] for x in first["messages"]]),
                         (3, ["client-late-1"]))

        shown = json.loads(self.dead("show", "client-late-1", "--json").stdout)
        self.assertEqual(json.loads(shown["body"])["payment_id"], "late-1")
        self.assertEqual(shown["headers"]["x-death"][0]["reason"], "expired")
        self.assertEqual(shown["correlation_id"], corr)
        self.assertEqual(json.loads(self.dead("show", "2", "--json").stdout)
                         ["headers"]["x-paytx-error-code"], "missing_field")
        self.assertIn("late-1", self.dead("show", "1").stdout)

        # --dry-run changes nothing
        r = self.dead("replay", "client-late-1", "--dry-run")
        self.assertIn("would replay 1", r.stdout)
        self.assertEqual(self.listed(), listed)
        self.assertEqual(self.d.ctl("status", "late-1", check=False).returncode, 6)
        # a protocol message is refused and kept
        r = self.dead("replay", "forged-1", check=False)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("protocol message", r.stderr)
        self.assertEqual(self.d.dead_count(), 3)

        # the fixed one commits, its dead letter is gone, its client gets the outcome
        self.dead("replay", "client-late-1")
        out, _ = self.d.wait_reply(corr)
        self.assertEqual((out["payment_id"], out["status"]), ("late-1", "committed"))
        self.assertEqual(self.d.balance(b)[0], 250)
        self.d.wait_for(lambda: self.d.dead_count() == 2, what="dead letter removed")
        # one that fails again is dead-lettered again, with its reason
        self.dead("replay", "1")
        self.d.wait_for(lambda: self.d.dead_count() == 2 and
                        self.listed()["messages"][0]["message_id"] == "forged-1",
                        what="bad-1 dead-lettered again")
        again = self.listed()["messages"]
        self.assertEqual((again[1]["payment_id"], again[1]["code"], again[1]["origin_queue"]),
                         ("bad-1", "missing_field", "paytx.submit"))
        # --all replays what it may and reports the rest
        r = self.dead("replay", "--all", "--json", check=False)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertEqual([json.loads(l)["payment_id"] for l in r.stdout.splitlines()],
                         ["bad-1"])
        self.d.wait_for(lambda: self.d.dead_count() == 2, what="bad-1 back again")
        self.assertEqual([x["message_id"] for x in self.listed()["messages"]][0], "forged-1")
        self.d.check_invariants(self)

    def test_the_client_user_cannot_read_dead_letters(self):
        self.d.submit("{not json")
        self.d.wait_for(lambda: self.d.dead_count() == 1, what="a dead letter")
        r = self.d.ctl("dead", "list", "--amqp-url-operator", self.d.amqp_url, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(self.d.dead_count(), 1)
        self.assertEqual(self.listed()["count"], 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Secrets (passwords in URLs and DSNs, the signing key) and payment metadata
never appear in logs or error messages, through a full run that includes
failures, restarts and bad input."""
import json
import os
import signal
import subprocess
import urllib.parse

from harness import BUILD, PG_DSN, ROLE_DSNS, PaytxTestCase, main

AMQP_PASSWORD = "amqp-pw-Canary-7f3a9"
PG_PASSWORD = "pg-pw-Canary-41c2e"   # a wrong password, refused by the server
HMAC_KEY = "hmac-key-Canary-0b8d5e1f2a"
METADATA = "metadata-Canary-c0ffee"
# The PostgreSQL roles' real passwords: the owner's (paytxctl), each
# daemon's, the superuser's (the test's own connections).
PG_ROLE_PASSWORDS = tuple(urllib.parse.urlsplit(dsn).password
                          for dsn in list(ROLE_DSNS.values()) + [PG_DSN]
                          if urllib.parse.urlsplit(dsn).password)
CANARIES = (AMQP_PASSWORD, PG_PASSWORD, HMAC_KEY, METADATA) + PG_ROLE_PASSWORDS


class Secrets(PaytxTestCase):

    start_services = False

    def setUp(self):
        super().setUp()
        user = self.d.name + "_user"
        self.d._ctl("add_user", user, AMQP_PASSWORD)
        self.addCleanup(self.d._ctl, "delete_user", user)
        self.d._ctl("set_permissions", "-p", self.d.vhost, user, ".*", ".*", ".*")
        p = urllib.parse.urlsplit(self.d.amqp_url)
        netloc = "%s:%s@%s:%d" % (user, AMQP_PASSWORD, p.hostname, p.port)
        self.secret_env = {
            "PAYTX_AMQP_URL": urllib.parse.urlunsplit((p.scheme, netloc, p.path, "", "")),
            "PAYTX_HMAC_KEY": HMAC_KEY,
        }
        # Every process connects with its role's real password (the
        # harness's role DSNs): those are canaries too.
        self.assertEqual(len(PG_ROLE_PASSWORDS), len(ROLE_DSNS) + 1,
                         "every role DSN (and the superuser's) has a password")

    def start(self, name, **extra):
        env = dict(self.secret_env, **extra)
        if name.startswith("ledger"):
            return self.d.start_ledger(name, **env)
        return self.d.start_coordinator(name, **env)

    def run_briefly(self, env):
        """Output of a coordinator that cannot get going, run for 3 s."""
        p = subprocess.Popen([os.path.join(BUILD, "paytx-coordinator")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = p.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            p.terminate()
            out, _ = p.communicate(timeout=20)
        return out.decode(errors="replace")

    def test_no_secret_or_metadata_in_any_log(self):
        self.d.ctl("migrate")
        for name in ("ledger.0", "ledger.1", "coordinator"):
            self.start(name)
        a, b = self.alice_and_bob(1000)
        meta = {"note": METADATA, "nested": {"k": METADATA}}
        ok = self.d.pay_and_wait({"payment_id": "s-1", "from": a, "to": b, "amount": 10,
                                  "currency": "EUR", "metadata": meta})
        self.assertEqual(ok["status"], "committed")
        no = self.d.pay_and_wait({"payment_id": "s-2", "from": a, "to": b, "amount": 10 ** 9,
                                  "currency": "EUR", "metadata": meta})
        self.assertEqual(no["status"], "aborted")
        # bad input that carries the canaries in many places
        # (payment ids and top-level field names are echoed on purpose: they
        # are identifiers the client needs to fix its request)
        for body in ('{"payment_id":"s-3","metadata":{"x":"%s"},"amount":"100"}' % METADATA,
                     '{"payment_id":"s-5","metadata":{"%s":1,"%s":2}}' % (METADATA, METADATA),
                     '{"payment_id":"s-6","from":"a","to":"b","amount":1,"currency":"EUR",'
                     '"metadata":{"%s":{"%s":[1,2,"\\ud800"]}}}' % (METADATA, METADATA),
                     '{"payment_id":"s-7","metadata":"%s"}' % METADATA,
                     json.dumps({"payment_id": "s-4", "from": a, "to": b, "amount": 1,
                                 "currency": "EUR", "metadata": {"x": METADATA * 200}})):
            out = self.d.pay_and_wait(body)
            self.assertEqual(out["status"], "rejected")
            for c in CANARIES:
                self.assertNotIn(c, json.dumps(out))
        # failures: a ledger killed, PostgreSQL unreachable, a bad setting
        self.d.stop("ledger.1", sig=signal.SIGKILL)
        self.start("ledger.1")
        self.d.check_invariants(self)  # while the coordinator still runs
        self.d.stop("coordinator")
        coord_dsn = self.d.dsn("coord", "coordinator")
        bad = coord_dsn.replace("127.0.0.1", "127.0.0.1:1")  # nothing listens
        texts = [self.run_briefly(dict(self.d.env(**self.secret_env), PAYTX_PG_DSN=bad))]
        # the server refuses a wrong password; the message must not show it
        user = urllib.parse.urlsplit(coord_dsn).username
        wrong = "postgresql://%s:%s@%s/%s" % (user, PG_PASSWORD,
                                             urllib.parse.urlsplit(coord_dsn).netloc
                                             .rsplit("@", 1)[1], self.d.dbs["coord"])
        texts.append(self.run_briefly(dict(self.d.env(**self.secret_env), PAYTX_PG_DSN=wrong)))
        self.assertIn("password authentication failed", texts[-1])
        for args in (["--amqp-url", "not a url"], ["--prepare-timeout-ms", "x"],
                     ["--help"], ["--check-config"]):
            r = subprocess.run([os.path.join(BUILD, "paytx-coordinator"), *args],
                               env=dict(self.d.env(**self.secret_env), PAYTX_PG_DSN=coord_dsn),
                               capture_output=True, text=True, timeout=20)
            texts.append(r.stdout + r.stderr)
        ctl = self.d.ctl("--json", "status", "s-1")
        texts.append(ctl.stdout + ctl.stderr)
        for name in list(self.d.procs):
            self.d.stop(name)
        for name in os.listdir(self.d.logdir):
            with open(os.path.join(self.d.logdir, name), errors="replace") as f:
                texts.append(f.read())
        self.assertGreater(sum(len(t) for t in texts), 1000)  # there were logs to scan
        for text in texts:
            for canary in CANARIES:
                self.assertNotIn(canary, text)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""TLS: amqps to RabbitMQ and sslmode=verify-full to PostgreSQL.

scripts/services.sh starts both services with TLS on (amqps on
PAYTX_TEST_AMQPS_PORT, ssl on the PostgreSQL port) and a test CA in
PAYTX_TEST_TLS_DIR whose server certificate names "localhost" only. Here:
a payment commits with every connection of every program on TLS (and the
servers say so); a CA made by this test (trusted by nobody) and the right
CA for the wrong host name (127.0.0.1) are both refused, by the broker
client and by libpq, and nothing is processed.

When the services run, this test never skips: a missing TLS setting fails.
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Deployment  # noqa: E402

TLS_DIR = os.environ.get("PAYTX_TEST_TLS_DIR")
AMQPS_PORT = os.environ.get("PAYTX_TEST_AMQPS_PORT")
SETTLE_S = 4   # long enough for several retries under the 100 ms..5 s backoff


def tls_settings():
    """(CA file, amqps port); fails, never skips, when they are missing."""
    if not TLS_DIR or not AMQPS_PORT:
        raise AssertionError("PAYTX_TEST_TLS_DIR / PAYTX_TEST_AMQPS_PORT not set: "
                             "scripts/services.sh env exports them")
    ca = os.path.join(TLS_DIR, "ca.pem")
    if not os.access(ca, os.R_OK):
        raise AssertionError("no readable test CA at %s (scripts/services.sh start "
                             "creates it)" % ca)
    return ca, int(AMQPS_PORT)


def untrusted_ca(directory):
    """A CA nobody signed the servers' certificates with, made right now."""
    ca = os.path.join(directory, "untrusted-ca.pem")
    subprocess.run(["openssl", "req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes",
                    "-days", "1", "-subj", "/CN=paytx untrusted test CA",
                    "-keyout", os.path.join(directory, "untrusted-ca.key"), "-out", ca],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    return ca


def amqps_url(plain_url, host, port):
    p = urllib.parse.urlsplit(plain_url)
    netloc = "%s:%s@%s:%d" % (p.username, p.password, host, port)
    return urllib.parse.urlunsplit(("amqps", netloc, p.path, "", ""))


def pg_tls_dsn(plain_dsn, host, ca):
    p = urllib.parse.urlsplit(plain_dsn)
    user = p.username + (":" + p.password if p.password else "")
    netloc = "%s@%s:%d" % (user, host, p.port)
    query = urllib.parse.urlencode({"sslmode": "verify-full", "sslrootcert": ca})
    return urllib.parse.urlunsplit(("postgresql", netloc, p.path, query, ""))


def log_messages(d, name):
    """The msg of every JSON log line of a process (quotes unescaped)."""
    out = []
    for line in d.log_text(name).splitlines():
        try:
            out.append(json.loads(line)["msg"])
        except (ValueError, KeyError, TypeError):
            out.append(line)
    return "\n".join(out)


class TlsDeployment(Deployment):
    """A deployment whose programs (and the test's own ledger queries) use
    TLS with the given host names and CAs; the test's AMQP client and the
    set-up stay on the plain listeners."""

    def __init__(self, name, amqp_host, amqp_ca, pg_host, pg_ca, client_cert=False):
        super().__init__(name)
        self.tls_amqp = (amqp_host, amqp_ca)
        self.tls_pg = (pg_host, pg_ca)
        self.client_cert = client_cert

    def dsn(self, which, role=None):
        plain = super().dsn(which, role)
        if not getattr(self, "tls_pg", None):
            return plain   # during set-up
        return pg_tls_dsn(plain, *self.tls_pg)

    def env(self, **extra):
        # After the overrides: each daemon's own user (start_coordinator,
        # start_ledger) goes over TLS too.
        env = super().env(**extra)
        _, port = tls_settings()
        if env["PAYTX_AMQP_URL"].startswith("amqp://"):
            env["PAYTX_AMQP_URL"] = amqps_url(env["PAYTX_AMQP_URL"], self.tls_amqp[0], port)
        env["PAYTX_AMQP_TLS_CA"] = self.tls_amqp[1]
        if self.client_cert:
            env["PAYTX_AMQP_TLS_CERT"] = os.path.join(TLS_DIR, "client.pem")
            env["PAYTX_AMQP_TLS_KEY"] = os.path.join(TLS_DIR, "client.key")
        return env


class TlsTest(unittest.TestCase):
    def setUp(self):
        self.ca, self.port = tls_settings()
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.deps = []

    def tearDown(self):
        for d in self.deps:
            d.close()

    def deployment(self, name, amqp_host="localhost", amqp_ca=None, pg_host="localhost",
                   pg_ca=None, client_cert=False):
        d = TlsDeployment(name, amqp_host, amqp_ca or self.ca, pg_host, pg_ca or self.ca,
                          client_cert)
        self.deps.append(d)
        return d

    def rabbit_connections(self, vhost):
        out = subprocess.run([*shlex.split(harness.RABBITMQCTL), "list_connections", "vhost",
                              "port", "ssl", "ssl_protocol", "peer_cert_subject",
                              "--formatter", "json",
                              "--silent"], check=True, capture_output=True, text=True,
                             timeout=60).stdout
        return [c for c in json.loads(out) if c["vhost"] == vhost]

    def pg_backends(self, dbs):
        """{database: [ssl, ...]} of the backends on dbs, seen by the server."""
        import psycopg2
        conn = psycopg2.connect(harness.PG_DSN)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT a.datname, s.ssl FROM pg_stat_activity a "
                            "JOIN pg_stat_ssl s USING (pid) WHERE a.datname = ANY(%s)",
                            (list(dbs),))
                rows = cur.fetchall()
        finally:
            conn.close()
        out = {db: [] for db in dbs}
        for db, ssl in rows:
            out[db].append(ssl)
        return out

    # -- (a) everything on TLS ------------------------------------------------
    def test_payment_commits_with_every_connection_on_tls(self):
        # the client certificate (optional, the broker does not insist) too
        d = self.deployment("tls_ok", client_cert=True)
        d.start_all()
        for q in ["paytx.submit"] + d.shards:
            d.wait_consumers(q, 1)
        a = harness.accounts_on("ledger.0", "alice")[0]
        b = harness.accounts_on("ledger.1", "bob")[0]
        d.account(a)
        d.account(b)
        d.fund(a, 1000)
        # paytxctl pay: its own amqps connection, and it waits for the outcome
        r = d.ctl("pay", "tls-" + uuid.uuid4().hex[:8], a, b, "250", "EUR")
        self.assertIn("committed", r.stdout)
        self.assertEqual(d.balance(a), (750, 0))
        self.assertEqual(d.balance(b), (250, 0))

        # The servers' view: every daemon connection is TLS.
        conns = self.rabbit_connections(d.vhost)
        tls = [c for c in conns if c["port"] == self.port]
        # coordinator and two ledgers, a consume and a publish connection each
        self.assertGreaterEqual(len(tls), 6, conns)
        for c in tls:
            self.assertTrue(c["ssl"], c)
            self.assertTrue(str(c["ssl_protocol"]).startswith("tlsv1"), c)
            self.assertIn("CN=paytx", str(c["peer_cert_subject"]), c)
        # the only plain connections are the test's own, as the client and as
        # the administrator (which also shows the column tells them apart)
        self.assertEqual(len([c for c in conns if not c["ssl"]]), 2, conns)
        backends = self.pg_backends(d.dbs.values())
        for db, ssl in backends.items():
            self.assertTrue(ssl, "no backend on %s" % db)
            self.assertTrue(all(ssl), "a non-TLS backend on %s: %s" % (db, ssl))
        d.check_invariants(self)

    # -- (b), (c) the broker's certificate refused ----------------------------
    def assert_amqp_refused(self, d, expect):
        d.ctl("migrate")
        d.start_coordinator()
        d.start_ledger("ledger.0")
        start = time.time()
        d.submit({"payment_id": "tls-refused", "from": "x", "to": "y", "amount": 1,
                  "currency": "EUR"})
        time.sleep(SETTLE_S)
        for name in ("coordinator", "ledger.0"):
            self.assertTrue(d.alive(name), "%s gave up instead of retrying" % name)
            log = log_messages(d, name)
            self.assertIn(expect, log, "%s did not log the TLS refusal" % name)
            self.assertNotIn("amqp: connected", log)
            self.assertNotIn(d.env()["PAYTX_AMQP_URL"], log)  # no URL, no password
            # backoff, not a spin: 100 ms doubling to 5 s allows ~6 tries
            tries = log.count(expect)
            self.assertLessEqual(tries, 10, "%s retried %d times in %.1f s" %
                                 (name, tries, time.time() - start))
            self.assertLess(d.cpu_seconds(name), 1.0, "%s spins" % name)
        for q in ("paytx.submit", "ledger.0"):
            self.assertEqual(d.ch.queue_declare(q, passive=True).method.consumer_count, 0, q)
        # nothing processed: the submit is still queued, no outcome came back
        self.assertEqual(d.ch.queue_declare("paytx.submit", passive=True)
                         .method.message_count, 1)
        self.assertEqual([c for c in self.rabbit_connections(d.vhost)
                          if c["port"] == self.port], [])

    def test_untrusted_ca_refused_by_amqp_client(self):
        d = self.deployment("tls_badca", amqp_ca=untrusted_ca(self.tmp.name))
        self.assert_amqp_refused(d, "TLS verification failed for localhost:%d" % self.port)

    def test_wrong_host_name_refused_by_amqp_client(self):
        d = self.deployment("tls_badhost", amqp_host="127.0.0.1")
        self.assert_amqp_refused(d, "TLS host-name verification failed: the broker's "
                                    "certificate is not for host 127.0.0.1")

    # -- (d) the same two refusals by PostgreSQL verify-full -----------------
    def assert_pg_refused(self, d, expect):
        plain = Deployment.dsn(d, "coord")
        # migrate over plain TCP so the daemon would have work to do
        r = subprocess.run([os.path.join(harness.BUILD, "paytxctl"), "migrate"],
                           env=d.env(PAYTX_PG_DSN=plain, PAYTX_LEDGER_DSNS=",".join(
                               "%s=%s" % (s, Deployment.dsn(d, s)) for s in d.shards)),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        # paytxctl refuses too, with libpq's reason
        r = d.ctl("balance", "nobody", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(expect, r.stdout + r.stderr)
        d.start_coordinator()
        d.start_ledger("ledger.0")
        time.sleep(SETTLE_S)
        for name in ("coordinator", "ledger.0"):
            self.assertTrue(d.alive(name), "%s gave up instead of retrying" % name)
            log = log_messages(d, name)
            self.assertIn("postgres connect failed", log)
            self.assertIn(expect, log, "%s did not log the certificate refusal" % name)
            self.assertNotIn(d.dsn("coord"), log)
            self.assertLessEqual(log.count(expect), 10, "%s retries too fast" % name)
            self.assertLess(d.cpu_seconds(name), 1.0, "%s spins" % name)
        for q in ("paytx.submit", "ledger.0"):
            self.assertEqual(d.ch.queue_declare(q, passive=True).method.consumer_count, 0, q)
        for db, ssl in self.pg_backends(d.dbs.values()).items():
            self.assertEqual(ssl, [], "a backend on %s despite the refusal" % db)

    def test_untrusted_ca_refused_by_postgres_verify_full(self):
        d = self.deployment("tls_pgbadca", pg_ca=untrusted_ca(self.tmp.name))
        self.assert_pg_refused(d, "certificate verify failed")

    def test_wrong_host_name_refused_by_postgres_verify_full(self):
        d = self.deployment("tls_pgbadhost", pg_host="127.0.0.1")
        self.assert_pg_refused(d, 'does not match host name "127.0.0.1"')


class TlsConfigTest(unittest.TestCase):
    """--check-config judges PAYTX_AMQP_TLS_CA without connecting."""

    def check_config(self, prog, **settings):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYTX_")}
        env.update({"PAYTX_PG_DSN": "host=localhost dbname=x",
                    "PAYTX_HMAC_KEY": harness.HMAC_KEY, "PAYTX_PARTICIPANT": "ledger.0"})
        env.update(settings)
        return subprocess.run([os.path.join(harness.BUILD, prog), "--check-config"], env=env,
                              capture_output=True, text=True, timeout=30)

    def test_check_config_judges_the_amqp_ca_file(self):
        ca, port = tls_settings()
        url = "amqps://u:pw-not-shown@localhost:%d/v" % port
        with tempfile.TemporaryDirectory() as tmp:
            not_pem = os.path.join(tmp, "not-a-cert.pem")
            with open(not_pem, "w") as f:
                f.write("hello\n")
            refused = {"missing file": {"PAYTX_AMQP_TLS_CA": os.path.join(tmp, "nope.pem")},
                       "no PEM inside": {"PAYTX_AMQP_TLS_CA": not_pem},
                       "amqps without a CA": {}}
            for prog in ("paytx-coordinator", "paytx-ledger", "paytxctl"):
                for case, settings in refused.items():
                    r = self.check_config(prog, PAYTX_AMQP_URL=url, **settings)
                    self.assertEqual(r.returncode, 2, (prog, case, r.stdout, r.stderr))
                    self.assertIn("setting PAYTX_AMQP_TLS_CA:", r.stderr, (prog, case))
                    self.assertNotIn("pw-not-shown", r.stdout + r.stderr)
                r = self.check_config(prog, PAYTX_AMQP_URL=url, PAYTX_AMQP_TLS_CA=ca)
                self.assertEqual(r.returncode, 0, (prog, r.stdout, r.stderr))
                self.assertIn("configuration OK", r.stdout)

    def test_check_config_judges_the_client_certificate(self):
        ca, port = tls_settings()
        cert = os.path.join(TLS_DIR, "client.pem")
        key = os.path.join(TLS_DIR, "client.key")
        url = "amqps://u:pw@localhost:%d/v" % port
        refused = {"cert without key": ({"PAYTX_AMQP_TLS_CERT": cert}, "set both"),
                   "key without cert": ({"PAYTX_AMQP_TLS_KEY": key}, "set both"),
                   "key as cert": ({"PAYTX_AMQP_TLS_CERT": key, "PAYTX_AMQP_TLS_KEY": key},
                                   "setting PAYTX_AMQP_TLS_CERT:"),
                   "cert as key": ({"PAYTX_AMQP_TLS_CERT": cert, "PAYTX_AMQP_TLS_KEY": cert},
                                   "setting PAYTX_AMQP_TLS_KEY:")}
        for prog in ("paytx-coordinator", "paytx-ledger", "paytxctl"):
            for case, (settings, expect) in refused.items():
                r = self.check_config(prog, PAYTX_AMQP_URL=url, PAYTX_AMQP_TLS_CA=ca,
                                      **settings)
                self.assertEqual(r.returncode, 2, (prog, case, r.stdout, r.stderr))
                self.assertIn(expect, r.stderr, (prog, case))
            r = self.check_config(prog, PAYTX_AMQP_URL=url, PAYTX_AMQP_TLS_CA=ca,
                                  PAYTX_AMQP_TLS_CERT=cert, PAYTX_AMQP_TLS_KEY=key)
            self.assertEqual(r.returncode, 0, (prog, r.stdout, r.stderr))


if __name__ == "__main__":
    harness.require_services()
    unittest.main(verbosity=2)

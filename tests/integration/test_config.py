#!/usr/bin/env python3
"""Bad configuration fails fast, before connecting, with a message that
names the setting. Needs no services: every run uses --check-config."""
import os
import subprocess
import sys
import unittest

BUILD = os.environ.get("PAYTX_BUILD_DIR", "build")
GOOD = {
    "PAYTX_AMQP_URL": "amqp://u:p@127.0.0.1:5672/v",
    "PAYTX_PG_DSN": "postgresql://u@127.0.0.1:5432/db",
    "PAYTX_HMAC_KEY": "0123456789abcdef0123",
    "PAYTX_PARTICIPANT": "ledger.0",
    "PAYTX_SHARDS": "ledger.0,ledger.1",
    "PAYTX_LEDGER_DSNS": "ledger.0=postgresql://u@h/l0,ledger.1=postgresql://u@h/l1",
    "PAYTX_REDIS_URL": "redis://127.0.0.1:6399",
}


def run(binary, env, *args):
    full = {k: v for k, v in os.environ.items() if not k.startswith("PAYTX_")}
    full.update(env)
    return subprocess.run([os.path.join(BUILD, binary), "--check-config", *args], env=full,
                          capture_output=True, text=True, timeout=20)


class Config(unittest.TestCase):

    def test_good_settings_pass(self):
        for binary in ("paytx-coordinator", "paytx-ledger", "paytx-risk", "paytx-cache",
                       "paytxctl"):
            r = run(binary, GOOD)
            self.assertEqual(r.returncode, 0, binary + ": " + r.stderr)

    def assert_refused(self, binary, setting, value):
        env = dict(GOOD)
        if value is None:
            env.pop(setting)
        else:
            env[setting] = value
        r = run(binary, env)
        self.assertNotEqual(r.returncode, 0, "%s accepted %s=%r" % (binary, setting, value))
        self.assertIn(setting, r.stderr, binary)
        if value and len(value) > 4:  # (short ones like "0" occur in any message)
            self.assertNotIn(value, r.stdout + r.stderr)  # values may be secrets

    def test_each_bad_setting_is_named(self):
        cases = [
            ("paytx-coordinator", "PAYTX_AMQP_URL", "http://u:hunter2@host/"),
            ("paytx-coordinator", "PAYTX_AMQP_URL", "amqp://u:pw@host:notaport/"),
            ("paytx-coordinator", "PAYTX_PG_DSN", "postgresql://u:pw@host:5432/db?bogus_option=1"),
            ("paytx-coordinator", "PAYTX_PG_DSN", None),
            ("paytx-coordinator", "PAYTX_HMAC_KEY", "short-secret"),
            ("paytx-coordinator", "PAYTX_PREPARE_TIMEOUT_MS", "soon"),
            ("paytx-coordinator", "PAYTX_SHARDS", "ledger.0,,ledger.1"),
            ("paytx-coordinator", "PAYTX_COORDINATOR_ID", "has space"),
            ("paytx-ledger", "PAYTX_PARTICIPANT", None),
            ("paytx-ledger", "PAYTX_AMQP_URL", "amqps//missing-colon"),
            ("paytx-ledger", "PAYTX_PG_DSN", "host=h dbname=x sslmode=maybe-secret"),
            ("paytx-ledger", "PAYTX_STATUS_AFTER_MS", "-5"),
            ("paytxctl", "PAYTX_LEDGER_DSNS", "ledger.0=postgresql://u@h/l0"),
            ("paytxctl", "PAYTX_LEDGER_DSNS", "ledger.0=postgresql://u@h/l0,ledger.1=port=x y"),
            ("paytxctl", "PAYTX_AMQP_URL", "amqp://u:pw@host:99999/"),
            ("paytxctl", "PAYTX_TIMEOUT_MS", "0"),
            ("paytxctl", "PAYTX_RISK_DSN", "postgresql://u:pw@h/r?bogus_option=1"),
            ("paytx-risk", "PAYTX_PG_DSN", None),
            ("paytx-risk", "PAYTX_PARTICIPANT", "has space"),
            ("paytx-risk", "PAYTX_BATCH_MAX", "0"),
            ("paytx-coordinator", "PAYTX_QUEUE_TYPE", "mirrored"),
            ("paytx-ledger", "PAYTX_QUEUE_TYPE", "Quorum"),
            ("paytx-risk", "PAYTX_QUEUE_TYPE", "stream"),
            ("paytx-cache", "PAYTX_REDIS_URL", None),
            ("paytx-cache", "PAYTX_REDIS_URL", "http://secret-host:1"),
            ("paytx-cache", "PAYTX_LEDGER_DSNS", "ledger.0=postgresql://u@h/l0"),
            ("paytx-cache", "PAYTX_PG_DSN", None),
            ("paytx-cache", "PAYTX_CACHE_LEASE_MS", "0"),
            ("paytx-cache", "PAYTX_CACHE_PREFIX", "has space"),
            ("paytx-cache", "PAYTX_REDIS_TIMEOUT_MS", "soon"),
            ("paytxctl", "PAYTX_REDIS_URL", "redis://h:notaport"),
            ("paytxctl", "PAYTX_CACHE_PREFIX", "a*b"),
        ]
        for binary, setting, value in cases:
            with self.subTest(binary=binary, setting=setting, value=value):
                self.assert_refused(binary, setting, value)

    def test_queue_type_is_a_setting_of_the_daemons(self):
        for binary in ("paytx-coordinator", "paytx-ledger", "paytx-risk"):
            for value in ("classic", "quorum"):
                r = run(binary, dict(GOOD, PAYTX_QUEUE_TYPE=value))
                self.assertEqual(r.returncode, 0, "%s %s: %s" % (binary, value, r.stderr))
            r = run(binary, GOOD, "--queue-type", "quorum")
            self.assertEqual(r.returncode, 0, binary + ": " + r.stderr)
            r = run(binary, GOOD, "--queue-type=ha")
            self.assertNotEqual(r.returncode, 0, binary)
            self.assertIn("PAYTX_QUEUE_TYPE", r.stderr, binary)
            h = subprocess.run([os.path.join(BUILD, binary), "--help"], capture_output=True,
                               text=True, timeout=20)
            self.assertIn("PAYTX_QUEUE_TYPE", h.stdout, binary)
        # paytxctl declares only its private reply queue, always classic
        h = subprocess.run([os.path.join(BUILD, "paytxctl"), "--help"], capture_output=True,
                           text=True, timeout=20)
        self.assertNotIn("PAYTX_QUEUE_TYPE", h.stdout)

    def test_stray_arguments_are_refused(self):
        r = run("paytx-coordinator", GOOD, "extra")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unexpected argument", r.stderr)


if __name__ == "__main__":
    if not os.path.exists(os.path.join(BUILD, "paytx-coordinator")):
        print("no binaries in %s" % BUILD, file=sys.stderr)
        sys.exit(1)
    unittest.main(verbosity=2)

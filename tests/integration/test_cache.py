"""The balance cache (docs/cache.md): paytx-cache as a participant, the read
path through paytxctl balance and the paytx.balance query, and the
guarantee: once a client has a payment's committed outcome, every balance
read reflects it; no read ever includes an aborted payment. Redis is
killed, restarted and flushed under it (scripts/services.sh)."""
import json
import os
import random
import subprocess
import time
import uuid

import harness
from harness import PaytxTestCase

SERVICES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                        "services.sh")


def services(*args):
    subprocess.run(["bash", SERVICES, *args], check=True, stdout=subprocess.DEVNULL,
                   timeout=120)


class CacheTest(PaytxTestCase):
    start_services = False

    def setUp(self):
        super().setUp()
        self.addCleanup(self.redis_up)
        self.d.ctl("migrate")
        for s in self.d.shards:
            self.d.start_ledger(s)
        self.d.start_cache()
        self.d.start_coordinator(PAYTX_PARTICIPANTS="cache", **self.coord_env)
        self.d.wait_consumers("paytx.balance", 1)
        self.d.wait_consumers("cache", 1)

    def redis_up(self):
        if self.d.redis("PING") != "PONG":
            services("restart-redis")

    # -- reads --------------------------------------------------------------
    def ctl_balance(self, account):
        r = self.d.ctl("balance", account, "--json")
        return json.loads(r.stdout)

    def both(self, account):
        """(ctl, query) reads of account."""
        return self.ctl_balance(account), self.d.balance_query(account)

    def assert_balance(self, account, expected, what=""):
        """Both read paths give expected; returns how many came from the cache."""
        cached = 0
        for src, b in zip(("paytxctl", "query"), self.both(account)):
            self.assertEqual(b.get("balance"), expected,
                             "%s: %s read %s %s" % (what, src, account, b))
            cached += b["source"] == "cache"
        return cached

    def coherent(self):
        return self.d.redis("EXISTS", self.d.cache_prefix + ":epoch") == "1"

    def wait_cached(self, account, expected):
        """Until a read of account is served from the cache (and right)."""
        def served():
            ctl, q = self.both(account)
            self.assertEqual((ctl["balance"], q["balance"]), (expected, expected))
            return ctl["source"] == "cache" and q["source"] == "cache"
        self.d.wait_for(served, timeout=30, what="%s served from the cache" % account)

    def pay(self, a, b, amount, pid=None):
        return self.d.pay_and_wait({"payment_id": pid or "p-" + uuid.uuid4().hex[:12],
                                    "from": a, "to": b, "amount": amount,
                                    "currency": "EUR"})

    # -- tests --------------------------------------------------------------
    def test_cached_reads_after_commit(self):
        a, b = self.alice_and_bob(1000)
        self.d.wait_for(self.coherent, what="a coherence epoch")
        self.assertEqual(self.pay(a, b, 300)["status"], "committed")
        self.assert_balance(a, 700, "right after the outcome")
        self.assert_balance(b, 300, "right after the outcome")
        self.wait_cached(a, 700)
        self.wait_cached(b, 300)
        self.assertEqual(self.d.redis("HGET", self.d.cache_prefix + ":a:" + a, "balance"),
                         "700")
        # the next commit drops the entry before its outcome can be seen, and
        # paytx-cache installs the new balance by itself, nobody reading it
        self.assertEqual(self.pay(a, b, 50)["status"], "committed")
        self.d.wait_for(lambda: self.d.redis("HGET", self.d.cache_prefix + ":a:" + b,
                                             "balance") == "350",
                        what="paytx-cache installs b's balance after the commit")
        self.assert_balance(a, 650, "after a second payment")
        self.assert_balance(b, 350, "after a second payment")
        self.wait_cached(b, 350)
        self.d.check_invariants(self)

    def test_balance_installed_when_the_ledger_posts_after_the_cache_committed(self):
        """The cache's commit and the ledger's posting of one payment race:
        here ledger.1 dies just before posting, so the cache has committed
        (and read b, still held) long before b's new balance exists. Once
        the restarted ledger posts it, paytx-cache must install it by
        itself, as it does when the ledger wins the race."""
        a, b = self.alice_and_bob(1000)
        self.d.wait_for(self.coherent, what="a coherence epoch")
        self.assertEqual(self.pay(a, b, 300)["status"], "committed")
        self.wait_cached(b, 300)
        key = self.d.cache_prefix + ":a:" + b
        self.d.stop("ledger.1")
        # the next payment's prepare is ledger.1's first local commit, its
        # posting the second
        self.d.start_ledger("ledger.1", PAYTX_CRASH_AT="participant.before_local_commit@2")
        self.d.wait_consumers("ledger.1", 1)
        corr = self.d.submit({"payment_id": "p-" + uuid.uuid4().hex[:12], "from": a,
                              "to": b, "amount": 50, "currency": "EUR"})
        self.d.wait_for(lambda: not self.d.alive("ledger.1"), timeout=20,
                        what="ledger.1 to die before posting")
        self.d.stop("ledger.1")
        # the cache's commit drops b's entry; its refresh reads b, held
        self.d.wait_for(lambda: self.d.redis("EXISTS", key) == "0",
                        what="the cache's commit to drop b's entry")
        time.sleep(1)
        self.assertEqual(self.d.redis("EXISTS", key), "0")
        self.d.start_ledger("ledger.1")
        out, _ = self.d.wait_reply(corr, timeout=40)
        self.assertEqual(out["status"], "committed", out)
        self.d.wait_for(lambda: self.d.redis("HGET", key, "balance") == "350",
                        what="paytx-cache installs b's balance once ledger.1 posted it")
        self.assert_balance(b, 350, "after the late posting")
        self.d.check_invariants(self)

    def test_bad_balance_queries_get_an_error_reply_and_are_dead_lettered(self):
        a, _ = self.alice_and_bob(100)
        pika = harness.pika
        bad = [(b, None, "invalid_request") for b in (
            b"not json", b'{"acct": "x"}', b'{"account": 5}', b'{"account": "has space"}',
            b"[1]", b"x" * 5000)]
        bad.append((b'{"account": "x"}', "payment.submit", "unknown_message_type"))
        for body, msg_type, code in bad:
            corr = uuid.uuid4().hex
            self.d.ch.basic_publish("paytx.balance", "", body, pika.BasicProperties(
                reply_to=self.d.balance_queue, correlation_id=corr, type=msg_type))
            out, props = self.d.wait_reply(corr, queue=self.d.balance_queue)
            self.assertEqual(out["error"], code, body[:40])
            self.assertEqual(props.type, "balance.result")
            self.assertRegex(props.message_id, r"^[0-9a-f]{16}-[0-9]+-[1-9][0-9]*$")
        # no reply_to: nowhere to answer, but kept all the same
        self.d.ch.basic_publish("paytx.balance", "", b'{"account": "x"}',
                                pika.BasicProperties(type="balance.query"))
        self.d.wait_for(lambda: self.d.dead_count() == len(bad) + 1,
                        what="every refused query dead-lettered")
        for props, _ in self.d.dead_letters():
            death = props.headers["x-death"][0]
            self.assertEqual((death["queue"], death["reason"]), ("paytx.balance", "rejected"))
        self.assertEqual(self.d.balance_query("ghost-1"),
                         {"account": "ghost-1", "error": "not_found"})
        self.assertEqual(self.d.dead_count(), 0)   # an unknown account is no bad input
        self.assertEqual(self.d.balance_query(a)["balance"], 100)   # still serving
        r = self.d.ctl("balance", "ghost-1", check=False)
        self.assertEqual(r.returncode, 6, r.stderr)

    def test_pending_during_prepare_and_abort_clears(self):
        a, b = self.alice_and_bob(1000)
        self.wait_cached(a, 1000)
        self.d.stop(self.d.shards[1])   # b's shard: the payment cannot be decided
        corr = self.d.submit({"payment_id": "stuck", "from": a, "to": b, "amount": 400,
                              "currency": "EUR"})
        pend = self.d.cache_prefix + ":p:" + a
        self.d.wait_for(lambda: self.d.redis("SCARD", pend) == "1", what="a marked pending")
        ctl, q = self.both(a)
        for r in (ctl, q):   # read through: the hold is undecided, not counted
            self.assertEqual((r["balance"], r["source"]), (1000, "ledger"), r)
        out, _ = self.d.wait_reply(corr, timeout=30)   # the prepare times out
        self.assertEqual((out["status"], out["reason"]), ("aborted", "timeout"))
        self.assert_balance(a, 1000, "after the abort")
        self.d.wait_for(lambda: self.d.redis("SCARD", pend) == "0", what="the mark cleared")
        self.wait_cached(a, 1000)
        self.d.start_ledger(self.d.shards[1])
        self.d.check_invariants(self)

    def test_redis_killed_flushed_restarted(self):
        a, b = self.alice_and_bob(1000)
        self.wait_cached(a, 1000)
        services("kill-redis")
        t0 = time.time()
        out = self.pay(a, b, 100)
        self.assertEqual(out["status"], "committed", out)   # the cache never fails one
        self.assertLess(time.time() - t0, 10)
        ctl, q = self.both(a)
        self.assertEqual((ctl["balance"], ctl["source"]), (900, "ledger"))
        self.assertEqual((q["balance"], q["source"]), (900, "ledger"))
        self.assertEqual(self.pay(a, b, 100)["status"], "committed")
        self.assert_balance(a, 800, "Redis down")
        services("restart-redis")
        self.assert_balance(a, 800, "Redis back, empty")
        self.d.wait_for(self.coherent, what="a new epoch after the restart")
        self.assertEqual(self.pay(a, b, 100)["status"], "committed")
        self.assert_balance(a, 700, "after the restart")
        self.wait_cached(a, 700)
        self.d.redis("FLUSHALL")
        self.assert_balance(a, 700, "right after FLUSHALL")
        self.assertEqual(self.pay(a, b, 100)["status"], "committed")
        self.assert_balance(a, 600, "after FLUSHALL")
        self.assert_balance(b, 400, "after FLUSHALL")
        self.wait_cached(b, 400)
        log = self.d.log_text("cache")
        self.assertIn("voting yes without a pending mark", log)
        self.assertIn("re-establishing", log)
        self.d.check_invariants(self)

    def test_stale_entry_is_never_served_after_flush(self):
        """A value planted under an old epoch, or a stale one after a flush,
        is not served: the epoch decides."""
        a, b = self.alice_and_bob(1000)
        self.wait_cached(a, 1000)
        key = self.d.cache_prefix + ":a:" + a
        self.d.redis("HSET", key, "balance", "999999")   # a lie, under the live epoch
        self.assertEqual(self.pay(a, b, 10)["status"], "committed")   # commit drops it
        self.assert_balance(a, 990, "after a commit over a planted value")
        self.d.redis("DEL", self.d.cache_prefix + ":epoch")
        self.d.redis("HSET", key, "balance", "5", "version", "999")
        self.assert_balance(a, 990, "no epoch: the ledger")
        self.d.wait_for(self.coherent, what="the epoch re-established")
        self.assert_balance(a, 990, "new epoch: the planted entry is gone")
        self.d.check_invariants(self)

    def test_committed_outcome_is_always_reflected(self):
        """The guarantee, checked after every outcome, by both read paths,
        while Redis is flushed and killed midway."""
        accounts = [harness.accounts_on(s, "acct")[0] for s in self.d.shards]
        accounts += [harness.accounts_on(self.d.shards[0], "more", 2)[1]]
        expected = {}
        for acc in accounts:
            self.d.account(acc)
            self.d.fund(acc, 500)
            expected[acc] = 500
        rng = random.Random(7)
        cached = 0
        for i in range(40):
            if i == 12:
                self.d.redis("FLUSHALL")
            if i == 24:
                services("kill-redis")
            if i == 30:
                services("restart-redis")
            src, dst = rng.sample(accounts, 2)
            amount = rng.choice([50, 120, 400, 700])
            out = self.pay(src, dst, amount, "g-%d" % i)
            if out["status"] == "committed":
                expected[src] -= amount
                expected[dst] += amount
            else:
                self.assertEqual(out["reason"], "insufficient_funds", out)
            for acc in (src, dst):
                cached += self.assert_balance(acc, expected[acc], "after %s (%s)" % (
                    "g-%d" % i, out["status"]))
        self.assertGreater(cached, 0, "no read was served from the cache")
        self.d.check_invariants(self)


class NoCacheTest(PaytxTestCase):
    """With no cache participant, paytxctl balance with a Redis URL reads
    the ledger: nothing ever set an epoch."""

    def test_no_cache_participant(self):
        if not harness.REDIS_URL:
            self.skipTest("no Redis")
        self.d.cache = True   # paytxctl gets PAYTX_REDIS_URL, no paytx-cache runs
        a, b = self.alice_and_bob(1000)
        out = self.d.pay_and_wait({"payment_id": "nc", "from": a, "to": b, "amount": 10,
                                   "currency": "EUR"})
        self.assertEqual(out["status"], "committed")
        r = json.loads(self.d.ctl("balance", a, "--json").stdout)
        self.assertEqual((r["balance"], r["source"]), (990, "ledger"))
        self.d.check_invariants(self)


if __name__ == "__main__":
    harness.main()

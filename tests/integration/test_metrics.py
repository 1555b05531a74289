#!/usr/bin/env python3
"""Metrics over HTTP: every daemon (coordinator, both ledger shards, risk)
serves GET /metrics in the Prometheus text format and GET /healthz. After
committed, aborted (insufficient funds) and dead-lettered (bad input)
payments, the counters moved by exactly what happened, the histograms are
well formed, and the gauges are back to 0 once the payments settled. The
text is parsed strictly: every sample is name{labels} value, after its
family's HELP and TYPE lines."""
import math
import os
import re
import socket
import subprocess
import urllib.error
import urllib.request
import uuid

from harness import BUILD, PaytxTestCase, main, participant_user, shard_of

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(r"^(%s)(?:\{(.*)\})? (\S+)$" % NAME)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
KINDS = ("counter", "gauge", "histogram")


def parse_labels(text, line):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            raise AssertionError("bad labels in %r" % line)
        if m.group(1) in labels:
            raise AssertionError("label %s twice in %r" % (m.group(1), line))
        labels[m.group(1)] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n"
                                    else e.group(1), m.group(2))
        pos = m.end()
        if m.group(3) == "," and pos == len(text):
            raise AssertionError("trailing comma in %r" % line)
    return labels


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)] if name.endswith(suffix) else None
        if base and types.get(base) == "histogram":
            return base
    return name


def parse(text):
    """{family: {"type", "help", "samples": [(name, labels, value)]}}; raises
    on anything that is not the text format."""
    if not text.endswith("\n"):
        raise AssertionError("exposition does not end with a newline")
    families, types = {}, {}
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            if not re.fullmatch(NAME, name) or not help_text or name in families:
                raise AssertionError("bad or repeated HELP: %r" % line)
            families[name] = {"help": help_text, "type": None, "samples": []}
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            fam = families.get(name)
            if fam is None or fam["type"] or kind not in KINDS:
                raise AssertionError("TYPE without its HELP, repeated or unknown: %r" % line)
            fam["type"] = types[name] = kind
        else:
            m = SAMPLE.match(line)
            if not m:
                raise AssertionError("not a sample line: %r" % line)
            name, labels, value = m.group(1), parse_labels(m.group(2) or "", line), m.group(3)
            fam = families.get(family_of(name, types))
            if fam is None or fam["type"] is None:
                raise AssertionError("sample before its HELP and TYPE: %r" % line)
            if fam["type"] != "histogram" and name != family_of(name, types):
                raise AssertionError("suffix on a non-histogram: %r" % line)
            fam["samples"].append((name, labels, float(value)))
    return families


def value(families, family, name=None, **labels):
    """The one sample of name (default: the family) with exactly labels, or 0."""
    found = [v for n, ls, v in families[family]["samples"]
             if n == (name or family) and ls == labels]
    assert len(found) <= 1, (family, labels, found)
    return found[0] if found else 0


def check_histograms(tc, families):
    """Every histogram series: le ascending ending at +Inf, cumulative counts
    that never fall, +Inf equal to _count, a _sum; returns {labels: count}."""
    counts = {}
    for family, fam in families.items():
        if fam["type"] != "histogram":
            continue
        series = {}
        for name, labels, v in fam["samples"]:
            key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
            s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
            if name == family + "_bucket":
                s["buckets"].append((float(labels["le"]), v))
            elif name == family + "_sum":
                s["sum"] = v
            else:
                s["count"] = v
        for key, s in series.items():
            les = [le for le, _ in s["buckets"]]
            tc.assertEqual(les, sorted(les), (family, key))
            tc.assertEqual(len(set(les)), len(les), (family, key))
            tc.assertTrue(les and math.isinf(les[-1]), (family, key, "no +Inf bucket"))
            cum = [c for _, c in s["buckets"]]
            tc.assertEqual(cum, sorted(cum), (family, key, "buckets not cumulative"))
            tc.assertEqual(cum[-1], s["count"], (family, key))
            tc.assertIsNotNone(s["sum"], (family, key))
            tc.assertGreaterEqual(s["sum"], 0)
            counts[(family,) + key] = s["count"]
    return counts


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Metrics(PaytxTestCase):
    start_services = False
    DAEMONS = ("coordinator", "ledger.0", "ledger.1", "risk")

    def setUp(self):
        super().setUp()
        self.d.ctl("migrate")
        # Port 0: each daemon picks a free port and logs it (no race with
        # other tests for a port chosen here).
        addr = {"PAYTX_METRICS_ADDR": "127.0.0.1:0"}
        self.d.start_risk(**addr)
        for s in self.d.shards:
            self.d.start_ledger(s, **addr)
        self.d.start_coordinator(PAYTX_PARTICIPANTS="risk", **addr)
        self.ports = {name: self.logged_port(name) for name in self.DAEMONS}
        for q in self.d.shards + ["risk"]:
            self.d.wait_consumers(q, 1)
        self.d.wait_consumers("paytx.submit", 1)

    def logged_port(self, name):
        pattern = re.compile(r"metrics: serving /metrics and /healthz on 127\.0\.0\.1:0 "
                             r"\(port (\d+)\)")
        found = []
        self.d.wait_for(lambda: found.extend(pattern.findall(self.d.log_text(name))) or found,
                        what="%s to log its metrics port" % name)
        return int(found[0])

    def get(self, name, path, method="GET"):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.ports[name], path),
                                     method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()

    def scrape(self, name):
        status, ctype, body = self.get(name, "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
        return parse(body)

    def pay(self, frm, to, amount):
        return self.d.pay_and_wait({"payment_id": "m-" + uuid.uuid4().hex[:12], "from": frm,
                                    "to": to, "amount": amount, "currency": "EUR"})

    def settled(self, name, *gauges):
        """Scrape until every gauge named reads 0; return that scrape."""
        out = {}

        def zero():
            out["m"] = self.scrape(name)
            return all(value(out["m"], g) == 0 and out["m"][g]["samples"] for g in gauges)
        self.d.wait_for(zero, timeout=20, what="%s gauges %s back to 0" % (name, gauges))
        return out["m"]

    def test_every_daemon_counts_what_happened(self):
        a, b = self.alice_and_bob(funds=1000)          # world -> a: committed
        self.assertEqual(self.pay(a, b, 300)["status"], "committed")
        out = self.pay(a, b, 5000)
        self.assertEqual((out["status"], out["reason"]), ("aborted", "insufficient_funds"))
        bad = self.d.submit("{not json")
        err, _ = self.d.wait_reply(bad)
        self.assertEqual(err.get("status"), "rejected", err)
        payments = [("world", a, True), (a, b, True), (a, b, False)]

        coord = self.settled("coordinator", "paytx_inflight", "paytx_oldest_in_doubt_seconds")
        self.assertEqual(value(coord, "paytx_payments_total", outcome="committed", reason=""), 2)
        self.assertEqual(value(coord, "paytx_payments_total", outcome="aborted",
                               reason="insufficient_funds"), 1)
        self.assertEqual(len(coord["paytx_payments_total"]["samples"]), 2)
        dead = coord["paytx_dead_letters_total"]["samples"]
        self.assertEqual([(ls["queue"], v) for _, ls, v in dead], [("paytx.submit", 1)], dead)
        self.assertEqual(dead[0][1]["code"], err["reason"])
        self.assertEqual(coord["paytx_reconnects_total"]["samples"], [])
        counts = check_histograms(self, coord)
        for phase in ("prepare", "decision", "total"):
            self.assertEqual(counts[("paytx_phase_seconds", ("phase", phase))], 3, phase)
        self.assertEqual(coord["paytx_votes_total"]["samples"], [])  # a participant's

        for name in ("ledger.0", "ledger.1", "risk"):
            m = self.settled(name, "paytx_in_doubt", "paytx_oldest_in_doubt_seconds")
            mine = [(commit, frm, to) for frm, to, commit in payments
                    if name == "risk" or name in (shard_of(frm), shard_of(to))]
            commits = sum(1 for commit, _, _ in mine if commit)
            steps = {"prepare": len(mine), "commit": commits, "abort": len(mine) - commits}
            for kind, n in steps.items():
                self.assertEqual(value(m, "paytx_steps_total", kind=kind), n, (name, kind))
            counts = check_histograms(self, m)
            for kind, n in steps.items():
                self.assertEqual(counts.get(("paytx_step_seconds", ("kind", kind)), 0), n,
                                 (name, kind))
            no = 1 if name == shard_of(a) else 0           # a cannot pay 5000
            self.assertEqual(value(m, "paytx_votes_total", result="no",
                                   reason="insufficient_funds"), no, name)
            self.assertEqual(value(m, "paytx_votes_total", result="yes", reason=""),
                             len(mine) - no, name)
            self.assertEqual(len(m["paytx_votes_total"]["samples"]), 1 + no, name)
            self.assertEqual(m["paytx_dead_letters_total"]["samples"], [], name)
            self.assertEqual(m["paytx_payments_total"]["samples"], [], name)

    def test_in_doubt_gauges_follow_a_stuck_payment(self):
        a, b = self.alice_and_bob(funds=1000)
        self.d.stop(shard_of(b))                  # b's shard never votes: a timeout
        corr = self.d.submit({"payment_id": "m-stuck", "from": a, "to": b, "amount": 10,
                              "currency": "EUR"})
        yes_voters = (shard_of(a), "risk")

        def stuck():
            held = [value(self.scrape(n), "paytx_in_doubt") for n in yes_voters]
            return held == [1, 1]
        self.d.wait_for(stuck, timeout=10, what="the yes voters to hold the payment in doubt")
        self.d.wait_for(lambda: value(self.scrape("coordinator"),
                                      "paytx_oldest_in_doubt_seconds") >= 0.5,
                        timeout=10, what="the coordinator to see it in doubt")
        self.assertEqual(value(self.scrape("coordinator"), "paytx_inflight"), 1)
        out, _ = self.d.wait_reply(corr, timeout=30)
        self.assertEqual((out["status"], out["reason"]), ("aborted", "timeout"))
        for name in yes_voters:                   # the abort reached them
            self.settled(name, "paytx_in_doubt", "paytx_oldest_in_doubt_seconds")
        coord = self.scrape("coordinator")
        # A stopped participant's durable queue keeps the prepare: it is not
        # re-sent (peers.h); the abort it has not acked is, after 10 s.
        self.assertEqual(value(coord, "paytx_resends_total", request="prepare"), 0)
        self.assertEqual(value(coord, "paytx_inflight"), 1)   # b's shard has not acked
        self.assertGreater(value(coord, "paytx_oldest_in_doubt_seconds"), 0)
        self.d.wait_for(lambda: value(self.scrape("coordinator"), "paytx_resends_total",
                                      request="decision") >= 1,
                        timeout=40, what="the unacknowledged abort re-sent")
        self.d.start_ledger(shard_of(b))
        coord = self.settled("coordinator", "paytx_inflight", "paytx_oldest_in_doubt_seconds")
        self.assertEqual(value(coord, "paytx_payments_total", outcome="aborted",
                               reason="timeout"), 1)

    def test_reconnects_are_counted(self):
        a, b = self.alice_and_bob(funds=1000)
        kill = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        self.assertEqual(self.d.query("coord", kill), [(1,)])     # the coordinator log
        self.assertEqual(self.d.query(shard_of(a), kill), [(1,)])  # a's shard
        self.assertEqual(self.pay(a, b, 10)["status"], "committed")
        pg = {"coordinator": 1, shard_of(a): 1, shard_of(b): 0, "risk": 0}
        for name, n in pg.items():
            self.assertEqual(value(self.scrape(name), "paytx_reconnects_total", to="postgres"),
                             n, name)
        # Every AMQP connection of the vhost closed: each daemon makes its own again.
        self.d._ctl("close_all_connections", "-p", self.d.vhost, "test_metrics")
        self.d.connect_amqp()
        for name in self.DAEMONS:
            self.d.wait_for(lambda: value(self.scrape(name), "paytx_reconnects_total",
                                          to="amqp") >= 1, what=name + " amqp reconnect")
        self.assertEqual(self.pay(a, b, 10)["status"], "committed")

    def test_healthz_404_and_405(self):
        for name in self.DAEMONS:
            self.assertEqual(self.get(name, "/healthz")[::2], (200, "ok\n"), name)
            with self.assertRaises(urllib.error.HTTPError) as e:
                self.get(name, "/metrics/extra")
            self.assertEqual(e.exception.code, 404, name)
            with self.assertRaises(urllib.error.HTTPError) as e:
                self.get(name, "/metrics", method="POST")
            self.assertEqual(e.exception.code, 405, name)

    def test_a_port_in_use_stops_start_up(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            taken = "127.0.0.1:%d" % s.getsockname()[1]
            for prog, env in (("paytx-coordinator", {}),
                              ("paytx-ledger", {"PAYTX_PARTICIPANT": "ledger.0"})):
                r = subprocess.run([os.path.join(BUILD, prog)], capture_output=True, text=True,
                                   timeout=30, env=self.d.env(PAYTX_METRICS_ADDR=taken, **env))
                self.assertEqual(r.returncode, 1, (prog, r.stdout, r.stderr))
                self.assertIn("cannot listen on %s: Address already in use" % taken,
                              r.stdout + r.stderr, prog)

    def test_bad_addresses_are_refused_by_check_config(self):
        port = free_port()
        for addr in ("localhost", "127.0.0.1:", ":%d" % port, "127.0.0.1:65536",
                     "::1:%d" % port, "[::1:%d" % port, "127.0.0.1:9x"):
            r = subprocess.run([os.path.join(BUILD, "paytx-coordinator"), "--check-config",
                                "--metrics-addr", addr], capture_output=True, text=True,
                               timeout=30, env=self.d.env())
            self.assertEqual(r.returncode, 2, (addr, r.stdout, r.stderr))
            self.assertIn("setting PAYTX_METRICS_ADDR: host:port", r.stderr, addr)
        for addr in ("127.0.0.1:%d" % port, "[::1]:%d" % port, "localhost:0", ""):
            r = subprocess.run([os.path.join(BUILD, "paytx-risk"), "--check-config"],
                               capture_output=True, text=True, timeout=30,
                               env=self.d.env(PAYTX_METRICS_ADDR=addr, PAYTX_PARTICIPANT="risk"))
            self.assertEqual(r.returncode, 0, (addr, r.stdout, r.stderr))

    def test_off_by_default(self):
        r = subprocess.run([os.path.join(BUILD, "paytx-ledger"), "--help"], capture_output=True,
                           text=True, timeout=30)
        self.assertRegex(r.stdout, r"PAYTX_METRICS_ADDR +--metrics-addr +\n")  # default: empty
        # A second ledger.0 process without the setting serves nothing.
        self.d.start("plain", [os.path.join(BUILD, "paytx-ledger")], PAYTX_PARTICIPANT="ledger.0",
                     PAYTX_PG_DSN=self.d.dsn("ledger.0", "ledger"), PAYTX_METRICS_ADDR="",
                     PAYTX_AMQP_URL=self.d.role_url(participant_user("ledger.0")))
        self.d.wait_consumers("ledger.0", 2)
        self.assertIn("participant ledger.0 ready", self.d.log_text("plain"))
        self.assertNotIn("metrics:", self.d.log_text("plain"))

if __name__ == "__main__":
    main()

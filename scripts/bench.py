#!/usr/bin/env python3
"""Run the baselines and the paytx workloads on this machine, one after the
other, and print each paytx figure as a ratio to its baseline.

Called by scripts/bench.sh (which starts everything); reads the local
environment (scripts/services.sh env)."""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BUILD = os.environ.get("PAYTX_BUILD_DIR", "build")
ADMIN_DSN = os.environ["PAYTX_TEST_PG_ADMIN_DSN"]
PGBIN = "/usr/lib/postgresql/15/bin"

TRANSFER = """\\set a random(1, :naccounts)
\\set b random(1, :naccounts)
\\set lo least(:a, :b)
\\set hi greatest(:a, :b)
\\set amt random(1, 100)
BEGIN;
UPDATE bench_accounts SET balance = balance - :amt WHERE id = :lo;
UPDATE bench_accounts SET balance = balance + :amt WHERE id = :hi;
INSERT INTO bench_entries (account, amount) VALUES (:lo, -:amt);
INSERT INTO bench_entries (account, amount) VALUES (:hi, :amt);
COMMIT;
"""


def say(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def dsn_for(db):
    base, _, _ = ADMIN_DSN.rpartition("/")
    return base + "/" + db


def psql(dsn, sql):
    subprocess.run([PGBIN + "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql],
                   check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, PGOPTIONS="-c client_min_messages=warning"))


def pgbench_setup(accounts):
    psql(ADMIN_DSN, "DROP DATABASE IF EXISTS paytx_pgbench")
    psql(ADMIN_DSN, "CREATE DATABASE paytx_pgbench")
    psql(dsn_for("paytx_pgbench"),
         "CREATE TABLE bench_accounts (id int PRIMARY KEY, balance bigint NOT NULL);"
         "CREATE TABLE bench_entries (id bigserial PRIMARY KEY, account int NOT NULL,"
         " amount bigint NOT NULL, posted_at timestamptz NOT NULL DEFAULT now());"
         "INSERT INTO bench_accounts SELECT g, 1000000000 FROM generate_series(1, %d) g;"
         % accounts)
    psql(dsn_for("paytx_pgbench"), "VACUUM ANALYZE")


def pgbench(accounts, clients, duration):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(TRANSFER)
    try:
        out = subprocess.run([PGBIN + "/pgbench", "-n", "-c", str(clients), "-j", "2",
                              "-T", str(duration), "-D", "naccounts=%d" % accounts,
                              "-f", f.name, dsn_for("paytx_pgbench")],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(f.name)
    return float(re.search(r"tps = ([0-9.]+)", out).group(1))


def amqp(duration):
    out = subprocess.run([os.path.join(BUILD, "paytx-bench-amqp"), "--duration", str(duration)],
                         check=True, capture_output=True, text=True,
                         env=dict(os.environ, PAYTX_AMQP_URL=os.environ["PAYTX_AMQP_URL_ADMIN"])
                         ).stdout
    return float(out.split()[-1])


def paytx(duration, split=False, **opts):
    """One paytx-bench run, its --json result. With split, also each
    daemon's loop counters over the measured seconds (r["loops"])."""
    warmup = opts.setdefault("warmup", 5)
    argv = [os.path.join(BUILD, "paytx-bench"), "--json", "--no-progress",
            "--duration", str(duration)]
    for k, v in opts.items():
        argv += ["--" + k.replace("_", "-"), str(v)]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err, snaps, timers = [], [], []
    urls = metrics_urls() if split else {}

    def snap():
        snaps.append((time.monotonic(), loop_counters(urls)))

    def read_err():
        for line in p.stderr:
            err.append(line)
            # Accounts are created and funded first: measure the load only.
            if urls and "load starts" in line:
                timers.extend(threading.Timer(t, snap) for t in (warmup, warmup + duration))
                for t in timers:
                    t.start()
    th = threading.Thread(target=read_err)
    th.start()
    out = p.stdout.read()
    p.wait()
    th.join()
    for t in timers:
        t.join()
    if p.returncode != 0:
        say("paytx-bench failed (%d): %s" % (p.returncode, "".join(err)[-2000:]))
    r = json.loads(out.splitlines()[-1])
    if len(snaps) == 2:
        (t0, a), (t1, b) = sorted(snaps, key=lambda x: x[0])
        r["loops"] = loop_split(a, b, t1 - t0)
    return r


def metrics_urls():
    """{daemon: its /metrics URL}, from scripts/daemons.sh status."""
    out = subprocess.run([os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                       "daemons.sh"), "status"],
                         capture_output=True, text=True).stdout
    return dict(re.findall(r"^(\S+): running \(pid \d+, metrics (http://\S+/metrics)\)",
                           out, re.M))


LOOP_LINE = re.compile(r'^paytx_loop_(iterations|messages|phase_microseconds)_total'
                       r'\{loop="[^"]*"(?:,phase="([^"]*)")?\} (\S+)$', re.M)


def loop_counters(urls):
    snap = {}
    for name, url in urls.items():
        try:
            with urllib.request.urlopen(url, timeout=2) as f:
                text = f.read().decode()
        except OSError:
            continue
        for kind, phase, v in LOOP_LINE.findall(text):
            snap[(name, kind, phase)] = float(v)
    return snap


# The loops' phases in the order they run (src/coordinator/coordinator.c,
# src/lib/participant.c); any other goes last.
PHASE_ORDER = {ph: i for i, ph in enumerate(
    ["wait+collect", "log", "log commit", "publish+confirm", "ack",
     "apply", "commit", "reply+confirm+ack"])}


def loop_split(a, b, seconds):
    """Per daemon: iterations/s, messages per batch, the share of the time
    in work (every phase but waiting for input), ms per iteration by phase."""
    loops = {}
    # A daemon that did not answer one of the two reads has no split: its
    # counters since start would pass for the window's.
    for name in sorted({k[0] for k in b} & {k[0] for k in a}):
        d = {k[1:]: v - a.get(k, 0) for k, v in b.items() if k[0] == name}
        it = d.get(("iterations", ""), 0)
        if it <= 0:
            continue
        phases = {ph: us / it / 1000 for (kind, ph), us in sorted(
                  d.items(), key=lambda kv: PHASE_ORDER.get(kv[0][1], len(PHASE_ORDER)))
                  if kind == "phase_microseconds"}
        busy = sum(ms for ph, ms in phases.items() if not ph.startswith("wait"))
        loops[name] = {"iterations_per_s": it / seconds,
                       "messages_per_batch": d.get(("messages", ""), 0) / it,
                       "busy": busy * it / seconds / 1000, "ms_per_iteration": phases}
    return loops


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def soak(minutes, rate, accounts):
    """Open loop at rate for minutes, sampling the daemons' RSS every 10 s:
    memory must stay flat (bounded by payments in flight, not history)."""
    run_dir = os.path.join(os.environ.get("PAYTX_HOME", ".paytx"), "run")
    pids = {}
    for f in sorted(os.listdir(run_dir)):
        if f.endswith(".pid"):
            with open(os.path.join(run_dir, f)) as fh:
                pids[f[:-4]] = int(fh.read().strip())
    samples = []   # (seconds, {name: kib})
    done = threading.Event()

    def sample():
        t0 = time.monotonic()
        while not done.is_set():
            samples.append((time.monotonic() - t0, {n: rss_kib(p) for n, p in pids.items()}))
            done.wait(10)
    th = threading.Thread(target=sample)
    th.start()
    try:
        r = paytx(minutes * 60, mode="open", rate=rate, cross_shard=1, accounts=accounts,
                  warmup=0)
    finally:
        done.set()
        th.join()
    print("soak: %d min open loop at %d/s: %.0f payments/s, p99 %.1f ms, invariants %s" %
          (minutes, rate, r["payments_per_s"], r["latency_ms"]["p99"],
           "OK" if r["invariants"]["ok"] else "VIOLATED"))
    print("  %-8s" % "minute" + "".join("%14s" % n for n in pids))
    for t, kib in samples:
        if int(t) % 60 < 10:
            print("  %-8d" % round(t / 60) + "".join(
                "%11s MiB" % ("%.1f" % (kib[n] / 1024) if kib[n] else "-") for n in pids))
    # After two minutes of warming up (pools, caches, the in-flight set
    # reaching its steady size) memory must not grow any more.
    first = next((k for t, k in samples if t >= 120), samples[0][1])
    last = samples[-1][1]
    for n in pids:
        if first.get(n) and last.get(n):
            print("  %s: %+.1f MiB from minute 2 to the end" % (n, (last[n] - first[n]) / 1024))
    ok = r["invariants"]["ok"] and r["outcomes"]["no_outcome"] == 0
    return 0 if ok else 1


def median(runs, key):
    return statistics.median(key(r) for r in runs)


class HostProbe:
    """How fast the host ran while a figure was measured. The build
    machine's virtual cores change speed by up to 2x from one second to the
    next (docs/performance.md, "Measuring"), so a ratio of two figures taken
    minutes apart may mix speeds. Every half second this times a fixed
    piece of work in its own thread's CPU time (waiting for a core does not
    count, only how fast the core runs it): microseconds, lower = faster."""

    def __init__(self, fig, name):
        self.fig, self.name, self.samples = fig, name, []
        self.stop = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _work():
        x = 0
        for i in range(20000):
            x += i * i
        return x

    def _run(self):
        while not self.stop.is_set():
            t0 = time.thread_time()
            self._work()
            self.samples.append((time.thread_time() - t0) * 1e6)
            self.stop.wait(0.5)

    def __enter__(self):
        self.th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.th.join()
        if self.samples:
            self.fig.setdefault("host_probe_us", {})[self.name] = \
                round(statistics.median(self.samples))
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=int, default=30, help="seconds per measurement")
    ap.add_argument("--repeat", type=int, default=1, help="runs per figure (median)")
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=16, help="pgbench clients")
    ap.add_argument("--concurrency", default="256,1024",
                    help="paytx outstanding payments in the closed loops, a comma-separated "
                         "list: each is run and the best is the maximum (bigger batches "
                         "cost latency, so both are shown)")
    ap.add_argument("--json", help="also write every figure to this file")
    ap.add_argument("--quick", action="store_true", help="skip the 1k/10k memory runs")
    ap.add_argument("--soak", type=int, metavar="MINUTES",
                    help="instead: open loop for MINUTES at --rate, RSS of every daemon "
                         "every 10 s (is memory flat?)")
    ap.add_argument("--rate", type=int, default=400, help="--soak payments per second")
    a = ap.parse_args()
    if a.soak:
        return soak(a.soak, a.rate, a.accounts)
    rep = range(a.repeat)
    levels = [int(c) for c in a.concurrency.split(",")]
    fig = {}
    say("pgbench: setting up %d accounts" % a.accounts)
    pgbench_setup(a.accounts)
    say("pgbench: uniform transfers")
    with HostProbe(fig, "pgbench uniform"):
        fig["pgbench_uniform_tps"] = statistics.median(
            pgbench(a.accounts, a.clients, a.duration) for _ in rep)
    say("pgbench: transfers among 10 hot accounts")
    with HostProbe(fig, "pgbench hot-10"):
        fig["pgbench_hot10_tps"] = statistics.median(
            pgbench(10, a.clients, a.duration) for _ in rep)
    say("RabbitMQ: confirmed persistent publishes through a durable queue")
    with HostProbe(fig, "RabbitMQ alone"):
        fig["amqp_msgs_per_s"] = statistics.median(amqp(a.duration) for _ in rep)
    named = []
    for c in levels:
        say("paytx: cross-shard, uniform accounts, closed loop, %d outstanding" % c)
        with HostProbe(fig, "paytx uniform@%d" % c):
            runs = [paytx(a.duration, mode="closed", concurrency=c, cross_shard=1,
                          accounts=a.accounts) for _ in rep]
        fig["paytx_uniform_per_s_at_%d" % c] = median(runs, lambda r: r["payments_per_s"])
        fig["paytx_uniform_p50_ms_at_%d" % c] = median(runs, lambda r: r["latency_ms"]["p50"])
        named += [("uniform@%d" % c, r) for r in runs]
        say("paytx: every payment touches one of 10 hot accounts, %d outstanding" % c)
        with HostProbe(fig, "paytx hot-10@%d" % c):
            runs = [paytx(a.duration, mode="closed", concurrency=c, cross_shard=1,
                          hot_share=1, hot_accounts=10, accounts=a.accounts) for _ in rep]
        fig["paytx_hot10_per_s_at_%d" % c] = median(runs, lambda r: r["payments_per_s"])
        named += [("hot-10@%d" % c, r) for r in runs]
    fig["paytx_uniform_per_s"] = max(fig["paytx_uniform_per_s_at_%d" % c] for c in levels)
    fig["paytx_hot10_per_s"] = max(fig["paytx_hot10_per_s_at_%d" % c] for c in levels)
    half = max(1, fig["paytx_uniform_per_s"] / 2)
    say("paytx: open loop at half the maximum, %.0f/s" % half)
    with HostProbe(fig, "paytx half rate"):
        lat = [paytx(a.duration, split=True, mode="open", rate=round(half), cross_shard=1,
                     accounts=a.accounts) for _ in rep]
    fig["paytx_half_rate_p99_ms"] = median(lat, lambda r: r["latency_ms"]["p99"])
    fig["paytx_half_rate_p50_ms"] = median(lat, lambda r: r["latency_ms"]["p50"])
    fig["half_rate_loops"] = [r.get("loops", {}) for r in lat]
    named += [("half rate", r) for r in lat]
    if not a.quick:
        for inflight in (1000, 10000):
            say("paytx: memory with %d payments in flight" % inflight)
            r = paytx(a.duration, mode="closed", concurrency=inflight, cross_shard=1,
                      accounts=a.accounts)
            named.append(("%d in flight" % inflight, r))
            for prog in ("paytx-coordinator", "paytx-ledger"):
                fig["rss_kib_%s_%d" % (prog, inflight)] = \
                    r["processes"].get(prog, {}).get("rss_kib")
    runs = [r for _, r in named]
    fig["invariants_ok"] = all(r["invariants"]["ok"] for r in runs)
    fig["no_outcome"] = sum(r["outcomes"]["no_outcome"] for r in runs)
    # A run whose payments mostly aborted (e.g. prepare deadlines missed
    # under a deep backlog) is no throughput figure: say what each did.
    fig["outcomes"] = [{k: r["outcomes"][k] for k in ("sent", "committed", "aborted",
                                                       "rejected", "no_outcome")}
                       for r in runs]

    print("machine: %d cores, %s" % (os.cpu_count(), os.uname().release))
    print("pgbench transfer, uniform         %10.0f tps" % fig["pgbench_uniform_tps"])
    print("pgbench transfer, 10 hot accounts %10.0f tps" % fig["pgbench_hot10_tps"])
    print("RabbitMQ confirmed publish+consume%10.0f msgs/s" % fig["amqp_msgs_per_s"])
    print("paytx cross-shard uniform         %10.0f payments/s  = %.2f x pgbench uniform" %
          (fig["paytx_uniform_per_s"], fig["paytx_uniform_per_s"] / fig["pgbench_uniform_tps"]))
    print("paytx 10 hot accounts             %10.0f payments/s  = %.2f x pgbench hot-10" %
          (fig["paytx_hot10_per_s"], fig["paytx_hot10_per_s"] / fig["pgbench_hot10_tps"]))
    for c in levels:
        print("  at %5d outstanding: uniform %6.0f/s (p50 %.0f ms), hot-10 %6.0f/s" %
              (c, fig["paytx_uniform_per_s_at_%d" % c], fig["paytx_uniform_p50_ms_at_%d" % c],
               fig["paytx_hot10_per_s_at_%d" % c]))
    print("paytx payments per raw broker msg %10.3f            (payments/s / msgs/s)" %
          (fig["paytx_uniform_per_s"] / fig["amqp_msgs_per_s"]))
    print("paytx p99 at half the maximum     %10.1f ms (p50 %.1f)" %
          (fig["paytx_half_rate_p99_ms"], fig["paytx_half_rate_p50_ms"]))
    for i, loops in enumerate(fig["half_rate_loops"]):
        print("  the loops in half-rate run %d (per iteration; busy = not waiting for input):"
              % (i + 1))
        for name, l in loops.items():
            print("    %-12s %4.0f iterations/s, %5.1f msgs/batch, busy %3.0f%%: %s" %
                  (name, l["iterations_per_s"], l["messages_per_batch"], 100 * l["busy"],
                   ", ".join("%s %.2f ms" % kv for kv in l["ms_per_iteration"].items()
                             if not kv[0].startswith("wait"))))
    for k in sorted(k for k in fig if k.startswith("rss_")):
        print("%-34s %9s KiB" % (k, fig[k]))
    for (name, _), o in zip(named, fig["outcomes"]):
        print("  %-14s sent %7d  committed %7d  aborted %7d  rejected %d" %
              (name, o["sent"], o["committed"], o["aborted"], o["rejected"]))
    probe = fig.get("host_probe_us", {})
    if probe:
        print("host speed per figure (fixed work, us of CPU, lower = faster): " +
              ", ".join("%s %d" % kv for kv in probe.items()))
        spread = max(probe.values()) / max(1, min(probe.values()))
        if spread > 1.25:
            print("  the host ran %.1fx slower in one figure than in another: ratios "
                  "between those figures mix two speeds" % spread)
    print("ledger invariants after every run: %s; payments without outcome: %d" %
          ("OK" if fig["invariants_ok"] else "VIOLATED", fig["no_outcome"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(fig, f, indent=2)
    return 0 if fig["invariants_ok"] and fig["no_outcome"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

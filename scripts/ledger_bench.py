#!/usr/bin/python3
"""What one ledger shard's PostgreSQL spends on a payment, without RabbitMQ.

Creates a scratch database, applies a ledger schema (sql/ledger.sql, or the
file given with --sql, e.g. an older release's from `git show`), creates
--accounts funded accounts, then runs pgbench with a script that calls the
step functions as src/ledger does (one prepared statement per step, each step
its own transaction): per payment a debit leg (prepare, commit) and a credit
leg (prepare, commit) under two txns, which is what the two shards of a
cross-shard payment do between them. Reports per payment: PostgreSQL CPU ms
(every process of this cluster, exited backends included; autovacuum off,
synchronous_commit off), WAL bytes, heap
heap row versions written (of which HOT updates), index growth, and pgbench's
rate. The machine may be shared: compare runs made back to back, as ratios.

  . scripts/env.sh
  git show REV:sql/ledger.sql > /tmp/old.sql
  scripts/ledger_bench.py --sql /tmp/old.sql; scripts/ledger_bench.py
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
PGBIN = "/usr/lib/postgresql/15/bin"
DB = "paytx_ledger_bench"

STEPS = """\\set a random(1, :naccounts)
\\set b random(1, :naccounts)
SELECT nextval('bench_txn') * 2 AS t \\gset
BEGIN;
SELECT vote FROM ledger_prepare(:t, 'ledger.0', 'bench', jsonb_build_array(jsonb_build_object('account', 'bench.' || :a, 'amount', -1, 'currency', 'EUR')));
COMMIT;
BEGIN;
SELECT COMMIT_T;
COMMIT;
BEGIN;
SELECT vote FROM ledger_prepare(:t + 1, 'ledger.0', 'bench', jsonb_build_array(jsonb_build_object('account', 'bench.' || :b, 'amount', 1, 'currency', 'EUR')));
COMMIT;
BEGIN;
SELECT COMMIT_T1;
COMMIT;
"""


def dsn_for(admin, db):
    return admin.rpartition("/")[0] + "/" + db


def cluster_cpu_s(data_dir):
    """CPU seconds of the postmaster, its live children and its reaped ones."""
    tick = os.sysconf("SC_CLK_TCK")
    with open(os.path.join(data_dir, "postmaster.pid")) as f:
        pm = int(f.readline())

    def stat(pid):
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()

    total = sum(int(x) for x in stat(pm)[11:15])  # utime stime cutime cstime
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                s = stat(int(entry))
            except OSError:
                continue
            if int(s[1]) == pm:
                total += int(s[11]) + int(s[12])
    return total / tick


def counters(cur):
    cur.execute("SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables")
    tables = {r[0]: r[1:] for r in cur.fetchall()}
    cur.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, "
                "coalesce(sum(n_tup_ins + n_tup_upd), 0), coalesce(sum(n_tup_hot_upd), 0) "
                "FROM pg_stat_user_tables")
    wal, versions, hot = cur.fetchone()
    cur.execute("SELECT coalesce(sum(pg_relation_size(indexrelid)), 0) FROM pg_stat_user_indexes")
    return {"tables": tables, "wal": int(wal), "versions": int(versions), "hot": int(hot),
            "index": int(cur.fetchone()[0])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sql", default=os.path.join(HERE, "..", "sql", "ledger.sql"))
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--payments", type=int, default=5000, help="per client")
    a = ap.parse_args()
    admin = os.environ["PAYTX_TEST_PG_ADMIN_DSN"]
    data_dir = os.path.join(os.environ["PAYTX_HOME"], "pg", "data")
    dsn = dsn_for(admin, DB)

    conn = psycopg2.connect(admin)
    conn.autocommit = True
    conn.cursor().execute("DROP DATABASE IF EXISTS " + DB)
    conn.cursor().execute("CREATE DATABASE " + DB)
    conn.close()
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    with open(a.sql) as f:
        cur.execute("BEGIN;" + f.read() + ";COMMIT")
    cur.execute("CREATE SEQUENCE bench_txn")
    cur.execute("INSERT INTO accounts (id, currency, balance) "
                "SELECT 'bench.' || i, 'EUR', 1000000000 FROM generate_series(1, %s) i",
                (a.accounts,))
    # Autovacuum would land in the measured CPU at random: off here.
    cur.execute("SELECT string_agg(format('ALTER TABLE %I SET (autovacuum_enabled = false)', "
                "relname), ';') FROM pg_stat_user_tables")
    cur.execute(cur.fetchone()[0])
    cur.execute("VACUUM ANALYZE")
    # Warm up (caches, plans), then measure.
    with tempfile.NamedTemporaryFile("w", suffix=".pgb") as script:
        # Ledger schema 3 commits a set of txns (bigint[]); 2 and 1 one txn.
        cur.execute("SELECT to_regprocedure('ledger_commit(bigint[], text)') IS NOT NULL")
        if cur.fetchone()[0]:
            commit = "outcome FROM ledger_commit(ARRAY[{}]::bigint[], 'ledger.0')"
        else:
            commit = "ledger_commit({}, 'ledger.0')"
        script.write(STEPS.replace("COMMIT_T1", commit.format(":t + 1"))
                     .replace("COMMIT_T", commit.format(":t")))
        script.flush()
        cmd = [PGBIN + "/pgbench", "-n", "-M", "prepared", "-c", str(a.clients), "-j", "2",
               "-D", "naccounts=%d" % a.accounts, "-f", script.name, dsn]
        # Without waiting for each WAL flush the run is CPU-bound, so its
        # rate says something about CPU too (the CPU figure is the same).
        env = dict(os.environ, PGOPTIONS="-c synchronous_commit=off")
        subprocess.run(cmd + ["-t", "200"], check=True, capture_output=True, env=env)
        time.sleep(2)  # exited backends' statistics reach pg_stat_user_tables
        c0, cpu0 = counters(cur), cluster_cpu_s(data_dir)
        out = subprocess.run(cmd + ["-t", str(a.payments)], check=True, capture_output=True,
                             text=True, env=env).stdout
        cpu1 = cluster_cpu_s(data_dir)
        time.sleep(2)
        c1 = counters(cur)
    n = a.clients * a.payments
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
    cur.execute("SELECT count(*) FROM barrier WHERE state = 'committed'")
    committed = cur.fetchone()[0]
    conn.close()
    print("schema %s: %d payments (%d committed legs), %d clients" %
          (a.sql, n, committed, a.clients))
    print("  per payment: PostgreSQL CPU %.3f ms, WAL %d bytes, row versions %.2f "
          "(HOT updates %.2f), index growth %d bytes; %.0f payments/s" %
          ((cpu1 - cpu0) * 1000 / n, (c1["wal"] - c0["wal"]) / n,
           (c1["versions"] - c0["versions"]) / n, (c1["hot"] - c0["hot"]) / n,
           (c1["index"] - c0["index"]) / n, tps))
    for t in sorted(c1["tables"]):
        d = [(x - y) / n for x, y in zip(c1["tables"][t], c0["tables"].get(t, (0, 0, 0)))]
        if any(d):
            print("    %-12s inserts %.2f, updates %.2f (HOT %.2f)" % (t, *d))
    return 0 if committed >= 2 * n else 1


if __name__ == "__main__":
    sys.exit(main())

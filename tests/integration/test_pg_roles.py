#!/usr/bin/env python3
"""PostgreSQL roles with least privilege, shown with the real roles: the
coordinator's role cannot touch a ledger, the ledger's role can only append
to the journal and cannot touch the coordinator log, neither can change the
schema, and a daemon refuses a database that `paytxctl migrate` has not
brought to its version. The rest of the suite shows the grants suffice:
every daemon there runs as its role."""
import os
import subprocess

import psycopg2

from harness import BUILD, PaytxTestCase, main

DENIED = "42501"        # insufficient_privilege
TRIGGER = "23001"       # restrict_violation: the journal's own triggers


class Roles(PaytxTestCase):

    def connect(self, which, role, autocommit=True):
        c = psycopg2.connect(self.d.dsn(which, role))
        c.autocommit = autocommit
        self.addCleanup(c.close)
        return c

    def superuser(self, which, sql):
        c = self.connect(which, None)
        with c.cursor() as cur:
            cur.execute(sql)

    def assert_denied(self, conn, sql, what=None):
        """sql fails for lack of a privilege (42501), naming what."""
        with conn.cursor() as cur, self.assertRaises(psycopg2.Error, msg=sql) as cm:
            cur.execute(sql)
        self.assertEqual(cm.exception.pgcode, DENIED, "%s: %s" % (sql, cm.exception))
        if what:
            self.assertIn("permission denied for " + what, str(cm.exception), sql)
        if not conn.autocommit:
            conn.rollback()

    def assert_no_connect(self, which, role):
        with self.assertRaises(psycopg2.OperationalError) as cm:
            psycopg2.connect(self.d.dsn(which, role)).close()
        self.assertIn("permission denied for database", str(cm.exception))

    def open_database_to(self, which, role, schema_usage):
        """What a careless administrator might grant: CONNECT (and USAGE on
        the schema). The table grants must still refuse everything."""
        self.superuser(which, "GRANT CONNECT ON DATABASE %s TO paytx_%s"
                       % (self.d.dbs[which], role))
        if schema_usage:
            self.superuser(which, "GRANT USAGE ON SCHEMA public TO paytx_%s" % role)
        return self.connect(which, role)

    def paid(self):
        """A committed cross-shard payment: rows in every ledger table."""
        a, b = self.alice_and_bob(1000)
        out = self.d.pay_and_wait({"payment_id": "roles-1", "from": a, "to": b,
                                   "amount": 100, "currency": "EUR"})
        self.assertEqual(out["status"], "committed")
        return a, b

    def test_coordinator_role_cannot_touch_ledger_tables(self):
        self.paid()
        ledger = self.d.shards[0]
        self.assert_no_connect(ledger, "coordinator")
        statements = []   # schema-qualified: without USAGE, search_path skips it
        for table in ("accounts", "entries", "barrier"):
            statements += ["SELECT * FROM public.%s" % table,
                           "UPDATE public.%s SET txn = txn" % table if table != "accounts" else
                           "UPDATE public.accounts SET balance = balance + 1",
                           "DELETE FROM public.%s" % table]
        statements += ["INSERT INTO public.accounts (id, currency) VALUES ('x', 'EUR')",
                       "INSERT INTO public.entries (txn, account, amount, currency, "
                       "balance_after) VALUES (1, 'x', 1, 'EUR', 1)",
                       "INSERT INTO public.barrier (txn, participant, state, accounts, amounts) "
                       "VALUES (1, 'x', 'prepared', '{x}', '{1}')"]
        # a view over a join: not updatable, so reading is all to refuse
        view = "SELECT * FROM public.open_holds"
        conn = self.open_database_to(ledger, "coordinator", schema_usage=False)
        for sql in statements + [view]:
            self.assert_denied(conn, sql, "schema public")
        self.superuser(ledger, "GRANT USAGE ON SCHEMA public TO paytx_coordinator")
        for sql in statements:
            self.assert_denied(conn, sql, "table")
        self.assert_denied(conn, view, "view")
        self.assert_denied(conn, "SELECT * FROM ledger_commit('{1}', 'ledger.0')", "function")
        self.assert_denied(conn, "SELECT nextval('entries_id_seq')", "sequence")

    def test_ledger_role_journal_is_append_only(self):
        a, _ = self.paid()
        shard = self.d.shards[0]   # where a lives
        conn = self.connect(shard, "ledger", autocommit=False)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM entries WHERE account = %s", (a,))
            self.assertGreater(cur.fetchone()[0], 0)
            # appending is what the role is for (rolled back: a bare entry
            # would break balances = journal)
            cur.execute("INSERT INTO entries (txn, account, amount, currency, balance_after) "
                        "VALUES (-1, %s, 0, 'EUR', 0)", (a,))
            self.assertEqual(cur.rowcount, 1)
        conn.rollback()
        # refused by privilege, before the triggers are even reached
        for sql in ("UPDATE entries SET amount = amount + 1",
                    "DELETE FROM entries",
                    "TRUNCATE entries"):
            self.assert_denied(conn, sql, "table entries")
        # nor can the role reach around the journal
        for sql in ("UPDATE accounts SET currency = 'USD'",
                    "UPDATE accounts SET external = true",
                    "INSERT INTO accounts (id, currency) VALUES ('x', 'EUR')",
                    "DELETE FROM accounts", "DELETE FROM barrier", "TRUNCATE barrier",
                    "UPDATE barrier SET amounts = '{0}'", "UPDATE barrier SET accounts = NULL",
                    "UPDATE barrier SET payment_id = 'x'",
                    "UPDATE paytx_schema SET version = 0"):
            self.assert_denied(conn, sql)
        # the owner is stopped by the triggers: defence in depth
        owner = self.connect(shard, "owner")
        for sql in ("UPDATE entries SET amount = amount + 1", "DELETE FROM entries",
                    "TRUNCATE entries"):
            with owner.cursor() as cur, self.assertRaises(psycopg2.Error) as cm:
                cur.execute(sql)
            self.assertEqual(cm.exception.pgcode, TRIGGER, sql)

    def test_ledger_role_cannot_touch_coordinator_log(self):
        self.paid()
        self.assert_no_connect("coord", "ledger")
        conn = self.open_database_to("coord", "ledger", schema_usage=True)
        for sql in ("SELECT * FROM payments", "SELECT * FROM decisions",
                    "SELECT * FROM payment_requests", "SELECT * FROM payment_states",
                    "UPDATE payment_states SET state = 'aborted'", "DELETE FROM decisions",
                    "INSERT INTO decisions (txn, commit, decided_by) VALUES (-1, true, 'x')",
                    "SELECT nextval('paytx_txn_seq')"):
            self.assert_denied(conn, sql)

    def test_coordinator_role_cannot_rewrite_its_log(self):
        self.paid()
        conn = self.connect("coord", "coordinator")
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM payments")
            self.assertEqual(cur.fetchone()[0], 2)   # the funding and the payment
            # the two tables behind it: one request and one state per payment
            cur.execute("SELECT count(*) FROM payment_requests JOIN payment_states "
                        "USING (txn)")
            self.assertEqual(cur.fetchone()[0], 2)
        conn.rollback()
        for sql in ("UPDATE payment_requests SET request = '{}'",
                    "UPDATE payment_requests SET payment_id = 'x'",
                    "UPDATE payment_requests SET metadata = NULL",
                    "UPDATE payment_requests SET reply_to = NULL",
                    "UPDATE payment_states SET txn = txn + 1",
                    "UPDATE decisions SET commit = NOT commit",
                    "DELETE FROM payment_requests", "DELETE FROM payment_states",
                    "DELETE FROM decisions", "TRUNCATE decisions", "TRUNCATE payment_states"):
            self.assert_denied(conn, sql)

    def test_risk_role_reads_limits_and_keeps_usage_only(self):
        self.d.start_risk()
        for which, role in (("risk", "coordinator"), ("risk", "ledger"),
                            ("coord", "risk"), (self.d.shards[0], "risk")):
            self.assert_no_connect(which, role)
        self.d.ctl("limit", "set", "default", "EUR", "--daily", "100")
        conn = self.connect("risk", "risk")
        with conn.cursor() as cur:
            cur.execute("SELECT daily FROM limits WHERE account = '*'")
            self.assertEqual(cur.fetchall(), [(100,)])
        for sql in ("UPDATE limits SET daily = NULL",
                    "INSERT INTO limits (account, currency, daily) VALUES ('x', 'EUR', 1)",
                    "DELETE FROM limits", "DELETE FROM daily_usage",
                    "DELETE FROM reservations", "DELETE FROM barrier",
                    "TRUNCATE daily_usage", "UPDATE daily_usage SET day = day + 1",
                    "UPDATE reservations SET amount = 1",
                    "UPDATE paytx_schema SET version = 0",
                    "CREATE TABLE t (x int)", "CREATE TEMP TABLE t (x int)",
                    "ALTER TABLE limits ADD COLUMN x int"):
            self.assert_denied(conn, sql)

    def test_cache_role_reads_only_what_the_read_path_needs(self):
        a, b = self.alice_and_bob(100)
        self.assertEqual(self.d.pay_and_wait({"payment_id": "cr", "from": a, "to": b,
                                              "amount": 10, "currency": "EUR"})["status"],
                         "committed")
        self.d.check_invariants(self)   # settled: posted on both shards
        shard = self.d.shards[0]
        conn = self.connect(shard, "cache")
        with conn.cursor() as cur:
            cur.execute("SELECT balance, held, version FROM accounts WHERE id = %s", (a,))
            self.assertEqual(cur.fetchall(), [(90, 0, 2)])
            cur.execute("SELECT txn, amount, debit FROM open_holds WHERE account = %s", (a,))
            self.assertEqual(cur.fetchall(), [])   # settled: nothing open
        for sql in ("SELECT * FROM entries", "SELECT * FROM barrier",
                    "SELECT accounts FROM barrier", "SELECT payment_id FROM open_holds",
                    "SELECT created_at FROM accounts",
                    "UPDATE accounts SET balance = 0", "DELETE FROM barrier",
                    "INSERT INTO entries (txn, account, amount, currency, balance_after) "
                    "VALUES (1, 'x', 1, 'EUR', 1)",
                    "SELECT * FROM ledger_commit('{1}', 'ledger.0')",
                    "CREATE TEMP TABLE t (x int)"):
            self.assert_denied(conn, sql)
        conn = self.connect("coord", "cache")
        with conn.cursor() as cur:
            cur.execute("SELECT txn, state, request FROM payments")
            self.assertEqual(len(cur.fetchall()), 2)
            cur.execute("SELECT txn, commit FROM decisions")
            self.assertEqual(len(cur.fetchall()), 2)
        for sql in ("SELECT * FROM payments", "SELECT metadata FROM payments",
                    "SELECT reply_to FROM payments", "SELECT * FROM decisions",
                    "SELECT request FROM payment_requests", "SELECT state FROM payment_states",
                    "UPDATE payment_states SET state = 'aborted'", "DELETE FROM decisions",
                    "INSERT INTO decisions (txn, commit, decided_by) VALUES (0, true, 'x')",
                    "SELECT nextval('paytx_txn_seq')"):
            self.assert_denied(conn, sql)

    def test_application_roles_cannot_change_the_schema(self):
        for which, role, table in (("coord", "coordinator", "payment_states"),
                                   (self.d.shards[0], "ledger", "entries"),
                                   (self.d.shards[1], "ledger", "accounts")):
            conn = self.connect(which, role)
            for sql in ("CREATE TABLE t (x int)",
                        "CREATE TEMP TABLE t (x int)",
                        "CREATE SCHEMA s",
                        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                        "ALTER TABLE %s ADD COLUMN x int" % table,
                        "ALTER TABLE %s DISABLE TRIGGER ALL" % table,
                        "ALTER TABLE %s OWNER TO paytx_%s" % (table, role),
                        "DROP TABLE %s" % table):
                self.assert_denied(conn, sql)
        conn = self.connect(self.d.shards[0], "ledger")
        self.assert_denied(conn, "CREATE OR REPLACE FUNCTION ledger_in_doubt("
                           "p text, o bigint, l integer) RETURNS SETOF bigint "
                           "LANGUAGE sql AS 'SELECT 1::bigint'")


class Startup(PaytxTestCase):

    start_services = False

    def superuser(self, which, sql):
        c = psycopg2.connect(self.d.dsn(which))
        c.autocommit = True
        try:
            with c.cursor() as cur:
                cur.execute(sql)
        finally:
            c.close()

    def run_daemon(self, prog, **env):
        r = subprocess.run([os.path.join(BUILD, prog)], env=self.d.env(**env),
                           capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout + r.stderr

    def test_daemons_refuse_a_schema_not_migrated_to_their_version(self):
        ledger = {"PAYTX_PARTICIPANT": "ledger.0",
                  "PAYTX_PG_DSN": self.d.dsn("ledger.0", "ledger")}
        coord = {"PAYTX_COORDINATOR_ID": self.d.name,
                 "PAYTX_PG_DSN": self.d.dsn("coord", "coordinator")}
        for prog, env in (("paytx-ledger", ledger), ("paytx-coordinator", coord)):
            rc, out = self.run_daemon(prog, **env)
            self.assertEqual(rc, 1, out)
            self.assertIn("schema is missing", out)
            self.assertIn("paytxctl migrate", out)
        # the daemons do not migrate: still nothing there
        rows = self.d.query("coord", "SELECT to_regclass('payments') IS NULL")
        self.assertEqual(rows, [(True,)])
        self.d.ctl("migrate")
        for which in ("coord", "ledger.0"):
            self.superuser(which, "UPDATE paytx_schema SET version = 999")
        for prog, env in (("paytx-ledger", ledger), ("paytx-coordinator", coord)):
            rc, out = self.run_daemon(prog, **env)
            self.assertEqual(rc, 1, out)
            self.assertIn("at version 999", out)
            self.assertIn("paytxctl migrate", out)
        self.d.ctl("migrate")   # brings it back; the daemons then start
        self.d.start_all()
        self.alice_and_bob(10)

    def test_migrate_is_idempotent_and_keeps_the_grants(self):
        for _ in range(2):
            self.d.ctl("migrate")
        rows = self.d.query("ledger.0", "SELECT has_table_privilege('paytx_ledger', 'entries', "
                            "'INSERT'), has_table_privilege('paytx_ledger', 'entries', "
                            "'UPDATE'), has_table_privilege('paytx_coordinator', 'accounts', "
                            "'SELECT'), has_database_privilege('paytx_coordinator', "
                            "current_database(), 'CONNECT')")
        self.assertEqual(rows, [(True, False, False, False)])
        # a privilege granted by hand is taken back by the next migration
        self.superuser("ledger.0", "GRANT UPDATE, DELETE ON entries TO paytx_ledger")
        self.d.ctl("migrate")
        rows = self.d.query("ledger.0", "SELECT has_table_privilege('paytx_ledger', 'entries', "
                            "'UPDATE'), has_table_privilege('paytx_ledger', 'entries', "
                            "'DELETE')")
        self.assertEqual(rows, [(False, False)])


if __name__ == "__main__":
    main()

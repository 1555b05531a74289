-- The coordinator log as schema version 2 left it (sql/coordinator.sql before
-- version 3), for test_log_upgrade.py: a database of the old layout.
-- The coordinator's durable log (one database shared by all coordinators).
-- Applied idempotently by `paytxctl migrate`, as the owner role (see
-- Privileges below); the coordinator only checks the version at start-up.
SELECT pg_advisory_xact_lock(7480011);

CREATE SEQUENCE IF NOT EXISTS paytx_txn_seq;

-- One row per accepted payment: the idempotency record and the 2PC state.
CREATE TABLE IF NOT EXISTS payments (
    payment_id     text PRIMARY KEY,
    txn            bigint NOT NULL UNIQUE DEFAULT nextval('paytx_txn_seq'),
    request_hash   text NOT NULL,          -- sha256 of the canonical request
    request        text NOT NULL,          -- the legs, as a submit message (no metadata)
    metadata       text,                   -- client metadata, stored, never logged
    state          text NOT NULL CHECK (state IN
                       ('preparing', 'committing', 'aborting', 'committed', 'aborted')),
    reason         text NOT NULL DEFAULT '',
    detail         text NOT NULL DEFAULT '',
    reply_to       text,
    correlation_id text,
    waiters        jsonb NOT NULL DEFAULT '[]',  -- duplicate submitters to answer too
    outcome_sent   boolean NOT NULL DEFAULT false,
    owner          text NOT NULL,          -- coordinator holding the lease
    lease_until    timestamptz NOT NULL,
    submitted_at   timestamptz NOT NULL DEFAULT now(),
    decided_at     timestamptz,
    finished_at    timestamptz
);
-- Version 2: the further participants (PAYTX_PARTICIPANTS, comma-separated)
-- the payment is prepared on, so that a coordinator adopting it decides on
-- exactly those whatever its own list says. NULL in rows logged before.
ALTER TABLE payments ADD COLUMN IF NOT EXISTS participants text;
-- Also version 2: the submit's W3C traceparent, carried on every message
-- about the payment, also after another coordinator adopts it.
ALTER TABLE payments ADD COLUMN IF NOT EXISTS traceparent text;
CREATE INDEX IF NOT EXISTS payments_open ON payments (owner, lease_until)
    WHERE state IN ('preparing', 'committing', 'aborting') OR NOT outcome_sent;

-- The decision. Its primary key is what makes two coordinators unable to
-- record different decisions for one transaction.
CREATE TABLE IF NOT EXISTS decisions (
    txn        bigint PRIMARY KEY,
    commit     boolean NOT NULL,
    reason     text NOT NULL DEFAULT '',
    detail     text NOT NULL DEFAULT '',
    decided_by text NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT now()
);

-- What this database is at: the coordinator checks it at start-up and
-- refuses to run on a missing or different schema. Bump the version with
-- PG_SCHEMA_COORDINATOR in src/lib/pg.h whenever this file changes what
-- the coordinator needs.
CREATE TABLE IF NOT EXISTS paytx_schema (
    component   text PRIMARY KEY,
    version     integer NOT NULL,
    migrated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO paytx_schema (component, version) VALUES ('coordinator', 2)
    ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, migrated_at = now();

-- Privileges. The role running this script owns every object; the
-- coordinator's role (paytx_coordinator) gets only what the log needs:
-- a payment's request is never rewritten and a decision never changes, so
-- neither has UPDATE on those columns, and nothing is ever deleted. The
-- ledger role (paytx_ledger) gets nothing here. Re-applied in full by every
-- migration (revoke all, then grant), so privileges converge to this list;
-- roles that do not exist are skipped, so any database still migrates.
DO $$
DECLARE
    v_db_owner boolean := (SELECT pg_has_role(current_user, datdba, 'MEMBER')
                           FROM pg_database WHERE datname = current_database());
BEGIN
    IF v_db_owner THEN
        EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    END IF;
    REVOKE ALL ON SCHEMA public FROM PUBLIC;
    REVOKE ALL ON payments, decisions, paytx_schema, paytx_txn_seq FROM PUBLIC;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'paytx_ledger') THEN
        REVOKE ALL ON payments, decisions, paytx_schema, paytx_txn_seq FROM paytx_ledger;
        REVOKE ALL ON SCHEMA public FROM paytx_ledger;
        IF v_db_owner THEN
            EXECUTE format('REVOKE ALL ON DATABASE %I FROM paytx_ledger', current_database());
        END IF;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'paytx_coordinator') THEN
        REVOKE ALL ON payments, decisions, paytx_schema, paytx_txn_seq FROM paytx_coordinator;
        IF v_db_owner THEN
            EXECUTE format('GRANT CONNECT ON DATABASE %I TO paytx_coordinator',
                           current_database());
        END IF;
        GRANT USAGE ON SCHEMA public TO paytx_coordinator;
        GRANT SELECT ON paytx_schema TO paytx_coordinator;
        GRANT USAGE ON SEQUENCE paytx_txn_seq TO paytx_coordinator;
        GRANT SELECT, INSERT ON payments, decisions TO paytx_coordinator;
        GRANT UPDATE (state, reason, detail, waiters, outcome_sent, owner, lease_until,
                      decided_at, finished_at) ON payments TO paytx_coordinator;
    END IF;
    -- The balance cache (paytx-cache, docs/cache.md): which transactions are
    -- decided committed, and which are still open (with their legs).
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'paytx_cache') THEN
        REVOKE ALL ON payments, decisions, paytx_schema, paytx_txn_seq FROM paytx_cache;
        IF v_db_owner THEN
            EXECUTE format('GRANT CONNECT ON DATABASE %I TO paytx_cache', current_database());
        END IF;
        GRANT USAGE ON SCHEMA public TO paytx_cache;
        GRANT SELECT ON paytx_schema TO paytx_cache;
        GRANT SELECT (txn, state, request) ON payments TO paytx_cache;
        GRANT SELECT (txn, commit) ON decisions TO paytx_cache;
    END IF;
END
$$;

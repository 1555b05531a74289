-- The coordinator's durable log (one database shared by all coordinators).
-- Applied idempotently by `paytxctl migrate`, as the owner role (see
-- Privileges below); the coordinator only checks the version at start-up.
SELECT pg_advisory_xact_lock(7480011);

CREATE SEQUENCE IF NOT EXISTS paytx_txn_seq;

-- Version 3 splits a payment in two: the request, written once and never
-- changed (payment_requests), and its small 2PC state, which every step
-- rewrites (payment_states). A step then copies a row of a few dozen bytes
-- instead of the request, and since no index covers a column a step changes
-- (the open set is indexed through the generated column `pending`, which
-- only flips when the payment is closed), PostgreSQL updates it in place on
-- its page (HOT) without touching any index. The view `payments` joins the
-- two for readers (paytxctl, the cache, operators).
--
-- Databases of versions 1 and 2 held both in one table, `payments`: it
-- becomes payment_requests, its state columns move to payment_states (open
-- payments keep their owner and lease, so they are adopted and finished as
-- after any restart), and the view takes its name.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_class WHERE relname = 'payments' AND relkind = 'r'
               AND relnamespace = 'public'::regnamespace) THEN
        ALTER TABLE payments ADD COLUMN IF NOT EXISTS participants text;
        ALTER TABLE payments ADD COLUMN IF NOT EXISTS traceparent text;
        ALTER TABLE payments RENAME TO payment_requests;
        ALTER INDEX IF EXISTS payments_pkey RENAME TO payment_requests_pkey;
        ALTER INDEX IF EXISTS payments_txn_key RENAME TO payment_requests_txn_key;
    END IF;
END
$$;

-- One row per accepted payment: the idempotency record. Never updated.
CREATE TABLE IF NOT EXISTS payment_requests (
    payment_id     text PRIMARY KEY,
    txn            bigint NOT NULL UNIQUE DEFAULT nextval('paytx_txn_seq'),
    request_hash   text NOT NULL,          -- sha256 of the canonical request
    request        text NOT NULL,          -- the legs, as a submit message (no metadata)
    metadata       text,                   -- client metadata, stored, never logged
    reply_to       text,
    correlation_id text,
    submitted_at   timestamptz NOT NULL DEFAULT now(),
    -- Version 2: the further participants (PAYTX_PARTICIPANTS,
    -- comma-separated) the payment is prepared on, so that a coordinator
    -- adopting it decides on exactly those whatever its own list says. NULL
    -- in rows logged before.
    participants   text,
    -- Also version 2: the submit's W3C traceparent, carried on every message
    -- about the payment, also after another coordinator adopts it.
    traceparent    text
);

-- One row per payment, inserted by the same statement as its request (so
-- no foreign key is checked at each insert): the 2PC state, the lease and
-- what is left to answer. Half of each page is left free so that the
-- updates of a step stay on the page (HOT).
CREATE TABLE IF NOT EXISTS payment_states (
    txn            bigint PRIMARY KEY,     -- payment_requests.txn
    state          text NOT NULL CHECK (state IN
                       ('preparing', 'committing', 'aborting', 'committed', 'aborted')),
    reason         text NOT NULL DEFAULT '',
    detail         text NOT NULL DEFAULT '',
    waiters        jsonb NOT NULL DEFAULT '[]',  -- duplicate submitters to answer too
    outcome_sent   boolean NOT NULL DEFAULT false,
    owner          text NOT NULL,          -- coordinator holding the lease
    lease_until    timestamptz NOT NULL,
    decided_at     timestamptz,
    finished_at    timestamptz,
    -- Still needs a coordinator: undecided, unacknowledged or unanswered.
    pending        boolean GENERATED ALWAYS AS
                       (state IN ('preparing', 'committing', 'aborting') OR NOT outcome_sent)
                       STORED
) WITH (fillfactor = 50);
-- Renewal and adoption read the open set through this index; its key and
-- predicate change only on adoption and at the close, never at a step.
CREATE INDEX IF NOT EXISTS payment_states_pending ON payment_states (owner) WHERE pending;

DO $$
BEGIN
    -- From versions 1 and 2: move the state of every payment (open ones
    -- matter; finished ones keep answering duplicates and status).
    IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'payment_requests'::regclass
               AND attname = 'state' AND NOT attisdropped) THEN
        EXECUTE 'INSERT INTO payment_states (txn, state, reason, detail, waiters, '
                'outcome_sent, owner, lease_until, decided_at, finished_at) '
                'SELECT txn, state, reason, detail, waiters, outcome_sent, owner, '
                'lease_until, decided_at, finished_at FROM payment_requests '
                'ON CONFLICT (txn) DO NOTHING';
        DROP INDEX IF EXISTS payments_open;
        ALTER TABLE payment_requests DROP COLUMN state, DROP COLUMN reason,
            DROP COLUMN detail, DROP COLUMN waiters, DROP COLUMN outcome_sent,
            DROP COLUMN owner, DROP COLUMN lease_until, DROP COLUMN decided_at,
            DROP COLUMN finished_at;
    END IF;
END
$$;

-- The whole payment, as one row per payment (the table of versions 1-2).
CREATE OR REPLACE VIEW payments AS
    SELECT r.payment_id, r.txn, r.request_hash, r.request, r.metadata, s.state, s.reason,
           s.detail, r.reply_to, r.correlation_id, s.waiters, s.outcome_sent, s.owner,
           s.lease_until, r.submitted_at, s.decided_at, s.finished_at, r.participants,
           r.traceparent, s.pending
    FROM payment_requests r JOIN payment_states s USING (txn);

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
INSERT INTO paytx_schema (component, version) VALUES ('coordinator', 3)
    ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, migrated_at = now();

-- Privileges. The role running this script owns every object; the
-- coordinator's role (paytx_coordinator) gets only what the log needs:
-- a payment's request is never rewritten and a decision never changes, so
-- it may update neither table, only the state columns of payment_states,
-- and nothing is ever deleted. Readers other than the coordinator get
-- columns of the view `payments`, which reads the tables as its owner. The
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
    REVOKE ALL ON payments, payment_requests, payment_states, decisions,
               paytx_schema, paytx_txn_seq FROM PUBLIC;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'paytx_ledger') THEN
        REVOKE ALL ON payments, payment_requests, payment_states, decisions,
               paytx_schema, paytx_txn_seq FROM paytx_ledger;
        REVOKE ALL ON SCHEMA public FROM paytx_ledger;
        IF v_db_owner THEN
            EXECUTE format('REVOKE ALL ON DATABASE %I FROM paytx_ledger', current_database());
        END IF;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'paytx_coordinator') THEN
        REVOKE ALL ON payments, payment_requests, payment_states, decisions,
               paytx_schema, paytx_txn_seq FROM paytx_coordinator;
        IF v_db_owner THEN
            EXECUTE format('GRANT CONNECT ON DATABASE %I TO paytx_coordinator',
                           current_database());
        END IF;
        GRANT USAGE ON SCHEMA public TO paytx_coordinator;
        GRANT SELECT ON paytx_schema TO paytx_coordinator;
        GRANT USAGE ON SEQUENCE paytx_txn_seq TO paytx_coordinator;
        GRANT SELECT, INSERT ON payment_requests, payment_states, decisions
            TO paytx_coordinator;
        GRANT SELECT ON payments TO paytx_coordinator;
        GRANT UPDATE (state, reason, detail, waiters, outcome_sent, owner, lease_until,
                      decided_at, finished_at) ON payment_states TO paytx_coordinator;
    END IF;
    -- The balance cache (paytx-cache, docs/cache.md): which transactions are
    -- decided committed, and which are still open (with their legs).
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'paytx_cache') THEN
        REVOKE ALL ON payments, payment_requests, payment_states, decisions,
               paytx_schema, paytx_txn_seq FROM paytx_cache;
        IF v_db_owner THEN
            EXECUTE format('GRANT CONNECT ON DATABASE %I TO paytx_cache', current_database());
        END IF;
        GRANT USAGE ON SCHEMA public TO paytx_cache;
        GRANT SELECT ON paytx_schema TO paytx_cache;
        GRANT SELECT (txn, state, request, pending) ON payments TO paytx_cache;
        GRANT SELECT (txn, commit) ON decisions TO paytx_cache;
    END IF;
END
$$;

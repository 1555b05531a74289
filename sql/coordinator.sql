-- The coordinator's durable log (one database shared by all coordinators).
-- Applied idempotently by `paytxctl migrate` and at coordinator start-up.
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

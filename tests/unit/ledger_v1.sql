-- Fixture: sql/ledger.sql as released at schema version 1 (before the
-- reservations moved into the barrier), for test_ledger.c's upgrade test.
-- Ledger shard schema: accounts, holds, the append-only journal and the 2PC barrier.
--
-- Applied by pg_migrate as one script inside BEGIN/COMMIT by `paytxctl
-- migrate`, as the owner role, on every run, so everything here is
-- idempotent and nothing here may refuse to run in a transaction block. The
-- ledger daemon only checks the version (paytx_schema) at start-up.
--
-- The step functions (ledger_prepare, ledger_commit, ledger_abort) are one
-- round trip each and never COMMIT: they run inside the caller's (batch)
-- transaction. Row locks are always taken on accounts in id order, COLLATE
-- "C", so two transactions touching the same accounts wait instead of
-- deadlocking.
--
-- Amounts are bigint minor units; negative = debit.

-- Serialise concurrent start-ups: CREATE ... IF NOT EXISTS and CREATE OR
-- REPLACE race on the catalogs otherwise. The key is ASCII 'paytx'
-- (0x7061797478); the coordinator schema may share it.
SELECT pg_advisory_xact_lock(482671686776);

CREATE TABLE IF NOT EXISTS accounts (
	id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._:-]{1,64}$'),
	currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	balance bigint NOT NULL DEFAULT 0,       -- posted
	held bigint NOT NULL DEFAULT 0 CHECK (held >= 0), -- reserved by pending debits
	external boolean NOT NULL DEFAULT false,  -- the outside world: may go negative
	version bigint NOT NULL DEFAULT 0,        -- bumped by every posting
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (external OR balance - held >= 0)
);

-- One reservation per (txn, account): the net of the txn's legs on the account.
CREATE TABLE IF NOT EXISTS holds (
	txn bigint NOT NULL,
	account text NOT NULL REFERENCES accounts (id),
	payment_id text,
	amount bigint NOT NULL,                   -- net signed amount of txn here
	debit bigint NOT NULL CHECK (debit >= 0), -- reserved: greatest(0, -amount)
	state text NOT NULL CHECK (state IN ('held', 'posted', 'released')),
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (txn, account)
);

-- The journal: one row per posted (txn, account); never updated or deleted.
CREATE TABLE IF NOT EXISTS entries (
	id bigserial PRIMARY KEY,
	txn bigint NOT NULL,
	payment_id text,
	account text NOT NULL REFERENCES accounts (id),
	amount bigint NOT NULL,
	currency char(3) NOT NULL,
	balance_after bigint NOT NULL,
	posted_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (txn, account)
);
CREATE INDEX IF NOT EXISTS entries_account_idx ON entries (account, id);
-- The balance read path (docs/cache.md) asks for an account's open holds.
CREATE INDEX IF NOT EXISTS holds_open_idx ON holds (account) WHERE state = 'held';

-- What this participant did for a txn; makes every step safe under
-- duplicates and reordering.
CREATE TABLE IF NOT EXISTS barrier (
	txn bigint NOT NULL,
	participant text NOT NULL,
	payment_id text,
	state text NOT NULL
		CHECK (state IN ('prepared', 'refused', 'committed', 'aborted')),
	reason text,                              -- why refused
	detail text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (txn, participant)
);
-- In-doubt scans look only at yes votes still waiting for a decision.
CREATE INDEX IF NOT EXISTS barrier_in_doubt_idx ON barrier (updated_at)
	WHERE state = 'prepared';

CREATE OR REPLACE FUNCTION entries_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'entries is an append-only journal: % is not allowed', TG_OP
		USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE OR REPLACE TRIGGER entries_no_update_delete
	BEFORE UPDATE OR DELETE ON entries
	FOR EACH ROW EXECUTE FUNCTION entries_immutable();
CREATE OR REPLACE TRIGGER entries_no_truncate
	BEFORE TRUNCATE ON entries
	FOR EACH STATEMENT EXECUTE FUNCTION entries_immutable();

-- The re-vote for a txn that already has a barrier row.
CREATE OR REPLACE FUNCTION ledger_revote(b barrier)
RETURNS TABLE (vote boolean, reason text, detail text)
LANGUAGE sql IMMUTABLE AS $$
	SELECT b.state IN ('prepared', 'committed'),
	       CASE b.state WHEN 'refused' THEN b.reason WHEN 'aborted' THEN 'aborted' END,
	       CASE b.state WHEN 'refused' THEN b.detail
			    WHEN 'aborted' THEN 'the transaction was already aborted here'
	       END;
$$;

-- Reserve what p_legs ([{"account","amount","currency"}]) need and vote.
-- Legs are merged per account. Nothing is written before the barrier row
-- is claimed, so a duplicate prepare running concurrently (another
-- replica) waits for the first one and re-votes.
CREATE OR REPLACE FUNCTION ledger_prepare(p_txn bigint, p_participant text,
					  p_payment_id text, p_legs jsonb)
RETURNS TABLE (vote boolean, reason text, detail text)
LANGUAGE plpgsql AS $$
DECLARE
	b barrier%ROWTYPE;
	acc accounts%ROWTYPE;
	v_accounts text[];   -- merged legs, sorted by account (COLLATE "C")
	v_amounts bigint[];
	v_debits bigint[];
	v_currencies text[]; -- the leg currency, or a list when they differ
	v_malformed boolean;
	v_reason text;
	v_detail text;
BEGIN
	SELECT * INTO b FROM barrier
		WHERE barrier.txn = p_txn AND barrier.participant = p_participant;
	IF FOUND THEN
		RETURN QUERY SELECT * FROM ledger_revote(b);
		RETURN;
	END IF;
	IF jsonb_typeof(p_legs) IS DISTINCT FROM 'array' THEN
		RAISE EXCEPTION 'ledger_prepare: legs must be a JSON array'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	SELECT coalesce(array_agg(m.account ORDER BY m.account COLLATE "C"), '{}'),
	       coalesce(array_agg(m.amount ORDER BY m.account COLLATE "C"), '{}'),
	       coalesce(array_agg(greatest(0, -m.amount) ORDER BY m.account COLLATE "C"), '{}'),
	       coalesce(array_agg(m.currencies ORDER BY m.account COLLATE "C"), '{}'),
	       bool_or(m.account IS NULL OR m.amount IS NULL OR m.has_null)
	INTO v_accounts, v_amounts, v_debits, v_currencies, v_malformed
	FROM (SELECT l.account, sum(l.amount)::bigint AS amount,
		     string_agg(DISTINCT l.currency, ', ') AS currencies,
		     bool_or(l.currency IS NULL) AS has_null
	      FROM jsonb_to_recordset(p_legs) AS l(account text, amount bigint, currency text)
	      GROUP BY l.account) m;
	IF v_malformed THEN
		RAISE EXCEPTION 'ledger_prepare: every leg needs account, amount and currency'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	FOR i IN 1 .. cardinality(v_accounts) LOOP
		-- Debits change held: lock out other debits. A credit only needs
		-- the account to stay, so payments into a busy account do not queue.
		IF v_debits[i] > 0 THEN
			SELECT * INTO acc FROM accounts WHERE id = v_accounts[i] FOR NO KEY UPDATE;
		ELSE
			SELECT * INTO acc FROM accounts WHERE id = v_accounts[i] FOR KEY SHARE;
		END IF;
		IF NOT FOUND THEN
			v_reason := 'unknown_account';
			v_detail := format('account %s does not exist', v_accounts[i]);
		ELSIF v_currencies[i] IS DISTINCT FROM acc.currency::text THEN
			v_reason := 'currency_mismatch';
			v_detail := format('account %s is in %s, the payment is in %s',
					   v_accounts[i], acc.currency, v_currencies[i]);
		ELSIF NOT acc.external AND acc.balance - acc.held - v_debits[i] < 0 THEN
			v_reason := 'insufficient_funds';
			v_detail := format('account %s has %s available, needs %s',
					   v_accounts[i], acc.balance - acc.held, v_debits[i]);
		END IF;
		EXIT WHEN v_reason IS NOT NULL;
	END LOOP;

	INSERT INTO barrier (txn, participant, payment_id, state, reason, detail)
		VALUES (p_txn, p_participant, p_payment_id,
			CASE WHEN v_reason IS NULL THEN 'prepared' ELSE 'refused' END,
			v_reason, v_detail)
		ON CONFLICT (txn, participant) DO NOTHING;
	IF NOT FOUND THEN
		-- A concurrent duplicate got there first (we waited for its commit).
		SELECT * INTO STRICT b FROM barrier
			WHERE barrier.txn = p_txn AND barrier.participant = p_participant;
		RETURN QUERY SELECT * FROM ledger_revote(b);
		RETURN;
	END IF;
	IF v_reason IS NOT NULL THEN
		RETURN QUERY SELECT false, v_reason, v_detail;
		RETURN;
	END IF;

	INSERT INTO holds (txn, account, payment_id, amount, debit, state)
		SELECT p_txn, u.account, p_payment_id, u.amount, u.debit, 'held'
		FROM unnest(v_accounts, v_amounts, v_debits) AS u(account, amount, debit);
	FOR i IN 1 .. cardinality(v_accounts) LOOP
		CONTINUE WHEN v_debits[i] = 0;
		UPDATE accounts SET held = held + v_debits[i] WHERE id = v_accounts[i];
	END LOOP;
	RETURN QUERY SELECT true, NULL::text, NULL::text;
END;
$$;

-- Post a prepared txn. Returns 'committed', 'already' or
-- 'protocol_violation' (no yes vote recorded: nothing is changed).
CREATE OR REPLACE FUNCTION ledger_commit(p_txn bigint, p_participant text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_state text;
	h holds%ROWTYPE;
	v_balance bigint;
	v_currency char(3);
BEGIN
	SELECT state INTO v_state FROM barrier
		WHERE txn = p_txn AND participant = p_participant FOR UPDATE;
	IF v_state = 'committed' THEN
		RETURN 'already';
	ELSIF v_state IS DISTINCT FROM 'prepared' THEN
		RETURN 'protocol_violation';
	END IF;

	FOR h IN SELECT * FROM holds WHERE txn = p_txn AND state = 'held'
		 ORDER BY account COLLATE "C" LOOP
		UPDATE accounts SET balance = balance + h.amount, held = held - h.debit,
				    version = version + 1
			WHERE id = h.account
			RETURNING balance, currency INTO STRICT v_balance, v_currency;
		INSERT INTO entries (txn, payment_id, account, amount, currency, balance_after)
			VALUES (p_txn, h.payment_id, h.account, h.amount, v_currency, v_balance);
	END LOOP;
	UPDATE holds SET state = 'posted' WHERE txn = p_txn AND state = 'held';
	UPDATE barrier SET state = 'committed', updated_at = now()
		WHERE txn = p_txn AND participant = p_participant;
	RETURN 'committed';
END;
$$;

-- Release a txn. Returns 'aborted', 'already' or 'protocol_violation'
-- (it was committed: never un-commit). An abort before any prepare records
-- an aborted barrier so that the late prepare votes no.
CREATE OR REPLACE FUNCTION ledger_abort(p_txn bigint, p_participant text,
					p_payment_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_state text;
	h holds%ROWTYPE;
BEGIN
	SELECT state INTO v_state FROM barrier
		WHERE txn = p_txn AND participant = p_participant FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO barrier (txn, participant, payment_id, state, reason)
			VALUES (p_txn, p_participant, p_payment_id, 'aborted', 'aborted')
			ON CONFLICT (txn, participant) DO NOTHING;
		IF FOUND THEN
			RETURN 'aborted';
		END IF;
		-- A concurrent prepare claimed the barrier first; handle its result.
		SELECT state INTO STRICT v_state FROM barrier
			WHERE txn = p_txn AND participant = p_participant FOR UPDATE;
	END IF;

	IF v_state = 'aborted' THEN
		RETURN 'already';
	ELSIF v_state = 'committed' THEN
		RETURN 'protocol_violation';
	ELSIF v_state = 'prepared' THEN
		FOR h IN SELECT * FROM holds WHERE txn = p_txn AND state = 'held' AND debit > 0
			 ORDER BY account COLLATE "C" LOOP
			UPDATE accounts SET held = held - h.debit WHERE id = h.account;
		END LOOP;
		UPDATE holds SET state = 'released' WHERE txn = p_txn AND state = 'held';
	END IF;
	UPDATE barrier SET state = 'aborted', updated_at = now()
		WHERE txn = p_txn AND participant = p_participant;
	RETURN 'aborted';
END;
$$;

-- Txns with a yes vote and no decision since before p_older_than_ms (Unix
-- epoch ms), oldest first: ask the coordinator for their outcome.
CREATE OR REPLACE FUNCTION ledger_in_doubt(p_participant text, p_older_than_ms bigint,
					   p_limit integer)
RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
	SELECT txn FROM barrier
	WHERE state = 'prepared' AND participant = p_participant
	  AND updated_at < to_timestamp(p_older_than_ms / 1000.0)
	ORDER BY updated_at, txn
	LIMIT p_limit;
$$;

-- Create an account; 'created', 'exists' (same currency and flags) or
-- 'conflict' (the id is taken by a different account).
CREATE OR REPLACE FUNCTION ledger_account_create(p_id text, p_currency text,
						 p_external boolean)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	acc accounts%ROWTYPE;
BEGIN
	INSERT INTO accounts (id, currency, external) VALUES (p_id, p_currency, p_external)
		ON CONFLICT (id) DO NOTHING;
	IF FOUND THEN
		RETURN 'created';
	END IF;
	SELECT * INTO STRICT acc FROM accounts WHERE id = p_id;
	IF acc.currency = p_currency AND acc.external = p_external THEN
		RETURN 'exists';
	END IF;
	RETURN 'conflict';
END;
$$;

-- What this database is at: the ledger checks it at start-up and refuses to
-- run on a missing or different schema. Bump the version with PG_SCHEMA_LEDGER
-- in src/lib/pg.h whenever this file changes what the ledger needs.
CREATE TABLE IF NOT EXISTS paytx_schema (
	component text PRIMARY KEY,
	version integer NOT NULL,
	migrated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO paytx_schema (component, version) VALUES ('ledger', 1)
	ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, migrated_at = now();

-- Privileges. The role running this script owns every object. The ledger's
-- role (paytx_ledger) gets what the step functions need and no more: the
-- journal (entries) is INSERT and SELECT only, so no UPDATE, DELETE or
-- TRUNCATE reaches the triggers above; an account's id, currency and kind
-- cannot be changed, nor accounts created (paytxctl does that, as the
-- owner); nothing is ever deleted. The coordinator's role (paytx_coordinator)
-- gets nothing here. Re-applied in full by every migration (revoke all, then
-- grant); roles that do not exist are skipped, so any database migrates.
DO $$
DECLARE
	v_db_owner boolean := (SELECT pg_has_role(current_user, datdba, 'MEMBER')
			       FROM pg_database WHERE datname = current_database());
	-- Every function and relation of this file: PUBLIC may EXECUTE a new
	-- function until it is listed here.
	v_funcs constant text := 'FUNCTION entries_immutable(), ledger_revote(barrier), '
		'ledger_prepare(bigint, text, text, jsonb), ledger_commit(bigint, text), '
		'ledger_abort(bigint, text, text), ledger_in_doubt(text, bigint, integer), '
		'ledger_account_create(text, text, boolean)';
	v_tables constant text :=
		'accounts, holds, entries, barrier, paytx_schema, entries_id_seq';
BEGIN
	IF v_db_owner THEN
		EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
	END IF;
	REVOKE ALL ON SCHEMA public FROM PUBLIC;
	EXECUTE 'REVOKE ALL ON ' || v_tables || ' FROM PUBLIC';
	EXECUTE 'REVOKE ALL ON ' || v_funcs || ' FROM PUBLIC';
	IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'paytx_coordinator') THEN
		EXECUTE 'REVOKE ALL ON ' || v_tables || ' FROM paytx_coordinator';
		EXECUTE 'REVOKE ALL ON ' || v_funcs || ' FROM paytx_coordinator';
		REVOKE ALL ON SCHEMA public FROM paytx_coordinator;
		IF v_db_owner THEN
			EXECUTE format('REVOKE ALL ON DATABASE %I FROM paytx_coordinator',
				       current_database());
		END IF;
	END IF;
	IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'paytx_ledger') THEN
		EXECUTE 'REVOKE ALL ON ' || v_tables || ' FROM paytx_ledger';
		EXECUTE 'REVOKE ALL ON ' || v_funcs || ' FROM paytx_ledger';
		IF v_db_owner THEN
			EXECUTE format('GRANT CONNECT ON DATABASE %I TO paytx_ledger',
				       current_database());
		END IF;
		GRANT USAGE ON SCHEMA public TO paytx_ledger;
		GRANT SELECT ON paytx_schema TO paytx_ledger;
		-- FOR NO KEY UPDATE / KEY SHARE in ledger_prepare need UPDATE on
		-- some column, which the postings have anyway.
		GRANT SELECT, UPDATE (balance, held, version) ON accounts TO paytx_ledger;
		GRANT SELECT, INSERT, UPDATE (state) ON holds TO paytx_ledger;
		GRANT SELECT, INSERT, UPDATE (state, updated_at) ON barrier TO paytx_ledger;
		GRANT SELECT, INSERT ON entries TO paytx_ledger;
		GRANT USAGE ON SEQUENCE entries_id_seq TO paytx_ledger;
		GRANT EXECUTE ON FUNCTION ledger_revote(barrier),
			ledger_prepare(bigint, text, text, jsonb), ledger_commit(bigint, text),
			ledger_abort(bigint, text, text), ledger_in_doubt(text, bigint, integer)
			TO paytx_ledger;
	END IF;
	-- The balance cache (paytx-cache, docs/cache.md) reads balances and
	-- open holds; it writes nothing here.
	IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'paytx_cache') THEN
		EXECUTE 'REVOKE ALL ON ' || v_tables || ' FROM paytx_cache';
		EXECUTE 'REVOKE ALL ON ' || v_funcs || ' FROM paytx_cache';
		IF v_db_owner THEN
			EXECUTE format('GRANT CONNECT ON DATABASE %I TO paytx_cache',
				       current_database());
		END IF;
		GRANT USAGE ON SCHEMA public TO paytx_cache;
		GRANT SELECT ON paytx_schema TO paytx_cache;
		GRANT SELECT (id, currency, balance, held, external, version) ON accounts
			TO paytx_cache;
		GRANT SELECT (txn, account, amount, debit, state) ON holds TO paytx_cache;
	END IF;
END
$$;

-- Ledger shard schema: accounts, the append-only journal and the 2PC barrier,
-- whose yes-vote rows carry the reservations (open holds).
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
--
-- What a payment writes here (docs/performance.md): prepare inserts one
-- barrier row holding the txn's merged legs and raises accounts.held for
-- each debit; commit updates that row, each account (HOT: no index covers
-- balance, held or version) and appends the journal; abort updates the row
-- and lowers held. Nothing per leg besides the accounts and the journal.

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

-- What this participant did for a txn; makes every step safe under
-- duplicates and reordering. A yes vote's row is also its reservation: the
-- txn's legs merged per account, kept after the decision as the record of
-- what was posted or released. One database serves one participant name.
CREATE TABLE IF NOT EXISTS barrier (
	txn bigint NOT NULL,
	participant text NOT NULL,
	payment_id text,
	state text NOT NULL
		CHECK (state IN ('prepared', 'refused', 'committed', 'aborted')),
	reason text,                              -- why refused
	detail text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	accounts text[],  -- yes votes: the legs' accounts, sorted COLLATE "C"
	amounts bigint[], -- and each one's net signed amount; the debit
			  -- reserved is greatest(0, -amount)
	PRIMARY KEY (txn, participant)
);
-- Schema version 1 kept the legs in a table holds, one row per (txn,
-- account), inserted at prepare and updated at the decision.
ALTER TABLE barrier ADD COLUMN IF NOT EXISTS accounts text[];
ALTER TABLE barrier ADD COLUMN IF NOT EXISTS amounts bigint[];
-- In-doubt scans, and the balance read path's open holds, look only at yes
-- votes still waiting for a decision.
CREATE INDEX IF NOT EXISTS barrier_in_doubt_idx ON barrier (updated_at)
	WHERE state = 'prepared';

-- Upgrade from version 1: move the open holds into their barrier rows, and
-- keep the table, as holds_v1, for the history of the decided ones (never
-- written again). Runs once: afterwards there is no table holds.
DO $$
BEGIN
	IF to_regclass('holds') IS NULL
	   OR (SELECT relkind FROM pg_class WHERE oid = to_regclass('holds')) <> 'r' THEN
		RETURN;
	END IF;
	UPDATE barrier b SET accounts = h.accounts, amounts = h.amounts
		FROM (SELECT txn, array_agg(account ORDER BY account COLLATE "C") AS accounts,
			     array_agg(amount ORDER BY account COLLATE "C") AS amounts
		      FROM holds WHERE state = 'held' GROUP BY txn) h
		WHERE b.txn = h.txn AND b.state = 'prepared' AND b.accounts IS NULL;
	-- Moved, not lost: the barrier row has them now.
	DELETE FROM holds h WHERE h.state = 'held'
		AND EXISTS (SELECT FROM barrier b WHERE b.txn = h.txn AND b.state = 'prepared');
	ALTER TABLE holds RENAME TO holds_v1;
	ALTER INDEX IF EXISTS holds_open_idx RENAME TO holds_v1_open_idx;
END
$$;

-- Every reservation still waiting for a decision, one row per (txn,
-- account): what the balance read path (docs/cache.md) adds or leaves out.
CREATE OR REPLACE VIEW open_holds AS
	SELECT b.txn, l.account, b.payment_id, l.amount, greatest(0, -l.amount) AS debit
	FROM barrier b, unnest(b.accounts, b.amounts) AS l(account, amount)
	WHERE b.state = 'prepared';

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

	INSERT INTO barrier (txn, participant, payment_id, state, reason, detail,
			     accounts, amounts)
		VALUES (p_txn, p_participant, p_payment_id,
			CASE WHEN v_reason IS NULL THEN 'prepared' ELSE 'refused' END,
			v_reason, v_detail,
			CASE WHEN v_reason IS NULL THEN v_accounts END,
			CASE WHEN v_reason IS NULL THEN v_amounts END)
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

	FOR i IN 1 .. cardinality(v_accounts) LOOP
		CONTINUE WHEN v_debits[i] = 0;
		UPDATE accounts SET held = held + v_debits[i] WHERE id = v_accounts[i];
	END LOOP;
	RETURN QUERY SELECT true, NULL::text, NULL::text;
END;
$$;

-- Post a prepared txn. Returns 'committed', 'already' or
-- 'protocol_violation' (no yes vote recorded: nothing is changed). Claiming
-- the barrier row (prepared -> committed) is the first statement, so a
-- duplicate commit waits for it and then finds nothing to claim.
CREATE OR REPLACE FUNCTION ledger_commit(p_txn bigint, p_participant text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_accounts text[];
	v_amounts bigint[];
	v_payment_id text;
	v_state text;
BEGIN
	UPDATE barrier SET state = 'committed', updated_at = now()
		WHERE txn = p_txn AND participant = p_participant AND state = 'prepared'
		RETURNING accounts, amounts, payment_id
		INTO v_accounts, v_amounts, v_payment_id;
	IF NOT FOUND THEN
		SELECT state INTO v_state FROM barrier
			WHERE txn = p_txn AND participant = p_participant;
		RETURN CASE WHEN v_state = 'committed' THEN 'already'
			    ELSE 'protocol_violation' END;
	END IF;
	-- In account order (the legs are sorted), one statement per leg.
	FOR i IN 1 .. coalesce(cardinality(v_accounts), 0) LOOP
		WITH a AS (
			UPDATE accounts SET balance = balance + v_amounts[i],
					    held = held - greatest(0, -v_amounts[i]),
					    version = version + 1
			WHERE id = v_accounts[i]
			RETURNING balance, currency)
		INSERT INTO entries (txn, payment_id, account, amount, currency, balance_after)
			SELECT p_txn, v_payment_id, v_accounts[i], v_amounts[i], a.currency,
			       a.balance
			FROM a;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'ledger_commit: account % of txn % is gone',
				v_accounts[i], p_txn USING ERRCODE = 'foreign_key_violation';
		END IF;
	END LOOP;
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
	v_accounts text[];
	v_amounts bigint[];
	v_state text;
BEGIN
	-- A no vote has no legs (NULL): only its state changes.
	UPDATE barrier SET state = 'aborted', updated_at = now()
		WHERE txn = p_txn AND participant = p_participant
		  AND state IN ('prepared', 'refused')
		RETURNING accounts, amounts INTO v_accounts, v_amounts;
	IF FOUND THEN
		FOR i IN 1 .. coalesce(cardinality(v_accounts), 0) LOOP
			CONTINUE WHEN v_amounts[i] >= 0;
			UPDATE accounts SET held = held + v_amounts[i] -- a debit: -amount held
				WHERE id = v_accounts[i];
		END LOOP;
		RETURN 'aborted';
	END IF;
	SELECT state INTO v_state FROM barrier
		WHERE txn = p_txn AND participant = p_participant;
	IF v_state = 'aborted' THEN
		RETURN 'already';
	ELSIF v_state = 'committed' THEN
		RETURN 'protocol_violation';
	END IF;
	INSERT INTO barrier (txn, participant, payment_id, state, reason)
		VALUES (p_txn, p_participant, p_payment_id, 'aborted', 'aborted')
		ON CONFLICT (txn, participant) DO NOTHING;
	IF FOUND THEN
		RETURN 'aborted';
	END IF;
	-- A concurrent prepare claimed the barrier and has committed (the
	-- insert waited for it): abort what it recorded. States only move
	-- forward, so this recurses at most once more.
	RETURN ledger_abort(p_txn, p_participant, p_payment_id);
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
-- Version 2: the reservations moved from the table holds into the barrier.
INSERT INTO paytx_schema (component, version) VALUES ('ledger', 2)
	ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, migrated_at = now();

-- Privileges. The role running this script owns every object. The ledger's
-- role (paytx_ledger) gets what the step functions need and no more: the
-- journal (entries) is INSERT and SELECT only, so no UPDATE, DELETE or
-- TRUNCATE reaches the triggers above; an account's id, currency and kind
-- cannot be changed, nor accounts created (paytxctl does that, as the
-- owner); a barrier row's legs cannot be changed once written; nothing is
-- ever deleted. holds_v1 (an upgraded database's history) is the owner's
-- alone. The coordinator's role (paytx_coordinator)
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
	v_tables text := 'accounts, open_holds, entries, barrier, paytx_schema, entries_id_seq';
BEGIN
	IF to_regclass('holds_v1') IS NOT NULL THEN
		v_tables := v_tables || ', holds_v1';
	END IF;
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
		GRANT SELECT, INSERT, UPDATE (state, updated_at) ON barrier TO paytx_ledger;
		GRANT SELECT, INSERT ON entries TO paytx_ledger;
		GRANT USAGE ON SEQUENCE entries_id_seq TO paytx_ledger;
		GRANT EXECUTE ON FUNCTION ledger_revote(barrier),
			ledger_prepare(bigint, text, text, jsonb), ledger_commit(bigint, text),
			ledger_abort(bigint, text, text), ledger_in_doubt(text, bigint, integer)
			TO paytx_ledger;
	END IF;
	-- The balance cache (paytx-cache, docs/cache.md) reads balances and
	-- open holds (through the view: not the barrier); it writes nothing here.
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
		GRANT SELECT (txn, account, amount, debit) ON open_holds TO paytx_cache;
	END IF;
END
$$;

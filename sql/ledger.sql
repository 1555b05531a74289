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
-- Plans. The step functions below run their statements with generic plans
-- (plan_cache_mode = force_generic_plan), made once per connection.
-- PostgreSQL's default plans each statement afresh for the actual
-- arguments until it judges a generic plan no worse, and for these
-- statements (CTEs over the batch's JSON and arrays) it keeps re-planning:
-- planning then costs more than running, about half of a one-step call.
-- Every statement reads by key (txn, account id), so the generic plan is
-- the custom one; tests/unit/test_ledger.c checks that no step scans a
-- table under it.
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
LANGUAGE plpgsql
-- Generic plans: see "Plans" above.
SET plan_cache_mode = force_generic_plan AS $$
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

-- Reserve and vote for a batch of prepares: p_steps is a JSON array of
-- {"txn", "payment_id", "legs"}, the arguments of ledger_prepare, and the
-- rows returned are the votes, one per step, in order: the same as calling
-- ledger_prepare for each step in turn. When every step is new (no barrier
-- row, no txn twice) and every one of them gets what it asks for (each
-- account exists in the currency its legs name, and the debits of the
-- whole batch fit), it reserves for the batch with one statement per table;
-- otherwise it does call ledger_prepare step by step.
CREATE OR REPLACE FUNCTION ledger_prepare_set(p_participant text, p_steps jsonb)
RETURNS TABLE (txn bigint, vote boolean, reason text, detail text)
LANGUAGE plpgsql
-- Generic plans: see "Plans" above.
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
	v_rows barrier[];      -- the barrier row of each step, in order
	v_fast boolean;
	-- Every account of the batch, sorted (COLLATE "C"): the debits of the
	-- whole batch on it, and the currency its legs name (NULL if several).
	v_accounts text[];
	v_debits bigint[];
	v_currencies text[];
	v_fit bigint;
	v_n bigint;
	s record;
BEGIN
	IF jsonb_typeof(p_steps) IS DISTINCT FROM 'array' THEN
		RAISE EXCEPTION 'ledger_prepare_set: steps must be a JSON array'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	WITH st AS (
		SELECT e.ord, (e.v->>'txn')::bigint AS txn, e.v->>'payment_id' AS payment_id,
		       e.v->'legs' AS legs
		FROM jsonb_array_elements(p_steps) WITH ORDINALITY AS e(v, ord)),
	merged AS ( -- each step's legs merged per account, as ledger_prepare does
		SELECT st.ord, l.account, sum(l.amount)::bigint AS amount,
		       string_agg(DISTINCT l.currency, ', ') AS currencies,
		       bool_or(l.account IS NULL OR l.amount IS NULL OR l.currency IS NULL) AS bad
		FROM st, jsonb_to_recordset(CASE jsonb_typeof(st.legs) WHEN 'array' THEN st.legs
						 ELSE '[]' END)
			AS l(account text, amount bigint, currency text)
		GROUP BY st.ord, l.account),
	per_step AS (
		SELECT st.ord, st.txn, st.payment_id,
		       coalesce(array_agg(m.account ORDER BY m.account COLLATE "C")
				FILTER (WHERE m.ord IS NOT NULL), '{}') AS accounts,
		       coalesce(array_agg(m.amount ORDER BY m.account COLLATE "C")
				FILTER (WHERE m.ord IS NOT NULL), '{}') AS amounts,
		       jsonb_typeof(st.legs) = 'array' AND NOT coalesce(bool_or(m.bad), false)
			AND st.txn IS NOT NULL AND st.payment_id IS NOT NULL AS ok
		FROM st LEFT JOIN merged m ON m.ord = st.ord
		GROUP BY st.ord, st.txn, st.payment_id, st.legs),
	per_account AS (
		SELECT m.account, sum(greatest(0, -m.amount))::bigint AS debit,
		       CASE WHEN min(m.currencies) = max(m.currencies)
			    THEN min(m.currencies) END AS currency
		FROM merged m WHERE m.account IS NOT NULL GROUP BY m.account)
	SELECT array_agg(ROW(ps.txn, p_participant, ps.payment_id, 'prepared', NULL, NULL, now(),
			     ps.accounts, ps.amounts)::barrier ORDER BY ps.ord),
	       coalesce(bool_and(ps.ok), true) AND count(DISTINCT ps.txn) = count(*),
	       (SELECT coalesce(array_agg(pa.account ORDER BY pa.account COLLATE "C"), '{}')
		FROM per_account pa),
	       (SELECT coalesce(array_agg(pa.debit ORDER BY pa.account COLLATE "C"), '{}')
		FROM per_account pa),
	       (SELECT coalesce(array_agg(pa.currency ORDER BY pa.account COLLATE "C"), '{}')
		FROM per_account pa)
	INTO v_rows, v_fast, v_accounts, v_debits, v_currencies
	FROM per_step ps;
	IF v_rows IS NULL THEN
		RETURN;
	END IF;
	IF v_fast THEN
		v_fast := NOT EXISTS (SELECT FROM barrier b, unnest(v_rows) AS r
				      WHERE b.participant = p_participant AND b.txn = r.txn);
	END IF;
	IF v_fast AND cardinality(v_accounts) > 0 THEN
		-- As ledger_prepare: debits lock out other debits, in id order; a
		-- credit only needs the account to stay.
		SELECT count(*) INTO v_fit FROM (
			SELECT FROM accounts a, unnest(v_accounts, v_debits, v_currencies)
				AS n(account, debit, currency)
			WHERE a.id = n.account AND n.debit > 0 AND a.currency::text = n.currency
			  AND (a.external OR a.balance - a.held - n.debit >= 0)
			ORDER BY a.id COLLATE "C" FOR NO KEY UPDATE OF a) q;
		SELECT v_fit + count(*) INTO v_fit FROM (
			SELECT FROM accounts a, unnest(v_accounts, v_debits, v_currencies)
				AS n(account, debit, currency)
			WHERE a.id = n.account AND n.debit = 0 AND a.currency::text = n.currency
			ORDER BY a.id COLLATE "C" FOR KEY SHARE OF a) q;
		v_fast := v_fit = cardinality(v_accounts);
	END IF;

	IF NOT v_fast THEN
		FOR s IN SELECT e.v FROM jsonb_array_elements(p_steps) WITH ORDINALITY AS e(v, ord)
			 ORDER BY e.ord LOOP
			RETURN QUERY SELECT (s.v->>'txn')::bigint, p.vote, p.reason, p.detail
				FROM ledger_prepare((s.v->>'txn')::bigint, p_participant,
						    s.v->>'payment_id', s.v->'legs') AS p;
		END LOOP;
		RETURN;
	END IF;

	INSERT INTO barrier SELECT * FROM unnest(v_rows) ON CONFLICT ON CONSTRAINT barrier_pkey DO NOTHING;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	IF v_n <> cardinality(v_rows) THEN
		-- A concurrent prepare of one of the txns (another replica) got
		-- there first: undo the batch, whose steps are then retried alone.
		RAISE EXCEPTION 'ledger_prepare_set: a txn of the batch was prepared concurrently'
			USING ERRCODE = 'serialization_failure';
	END IF;
	UPDATE accounts a SET held = a.held + n.debit
		FROM unnest(v_accounts, v_debits) AS n(account, debit)
		WHERE a.id = n.account AND n.debit > 0;
	RETURN QUERY SELECT r.txn, true, NULL::text, NULL::text
		FROM unnest(v_rows) WITH ORDINALITY AS r ORDER BY r.ordinality;
END;
$$;

-- Post the prepared txns of p_txns, the whole batch at once: one statement
-- per table, not one per leg. Returns one row per distinct txn of p_txns:
-- 'committed', 'already', or 'protocol_violation' (no yes vote recorded:
-- nothing is changed for it). Claiming the barrier rows (prepared ->
-- committed) is the first statement, so a duplicate commit waits for it and
-- then finds nothing to claim. Each account is updated once, by the net of
-- the batch's legs on it; its journal rows follow txn order, each with the
-- balance after it. (Version 2 took one txn per call and one statement per
-- leg.)
DROP FUNCTION IF EXISTS ledger_commit(bigint, text);
CREATE OR REPLACE FUNCTION ledger_commit(p_txns bigint[], p_participant text)
RETURNS TABLE (txn bigint, outcome text)
LANGUAGE plpgsql
-- Generic plans: see "Plans" above.
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
	v_claimed bigint[];
	-- The claimed legs, ordered by txn and then account (COLLATE "C").
	v_txns bigint[];
	v_payment_ids text[];
	v_accounts text[];
	v_amounts bigint[];
	v_posted bigint;
BEGIN
	WITH c AS (
		UPDATE barrier b SET state = 'committed', updated_at = now()
		WHERE b.participant = p_participant AND b.txn = ANY (p_txns)
		  AND b.state = 'prepared'
		RETURNING b.txn, b.payment_id, b.accounts, b.amounts)
	SELECT (SELECT coalesce(array_agg(c.txn), '{}') FROM c),
	       coalesce(array_agg(c.txn ORDER BY c.txn, l.account COLLATE "C"), '{}'),
	       coalesce(array_agg(c.payment_id ORDER BY c.txn, l.account COLLATE "C"), '{}'),
	       coalesce(array_agg(l.account ORDER BY c.txn, l.account COLLATE "C"), '{}'),
	       coalesce(array_agg(l.amount ORDER BY c.txn, l.account COLLATE "C"), '{}')
	INTO v_claimed, v_txns, v_payment_ids, v_accounts, v_amounts
	FROM c, unnest(c.accounts, c.amounts) AS l(account, amount);

	IF cardinality(v_accounts) > 0 THEN
		-- The update below locks in whatever order its plan reads: take
		-- the locks first, in id order.
		PERFORM FROM accounts a WHERE a.id = ANY (v_accounts)
			ORDER BY a.id COLLATE "C" FOR NO KEY UPDATE;
		WITH legs AS (
			SELECT * FROM unnest(v_txns, v_payment_ids, v_accounts, v_amounts)
				WITH ORDINALITY AS l(txn, payment_id, account, amount, ord)),
		net AS (
			SELECT legs.account, sum(legs.amount)::bigint AS amount,
			       sum(greatest(0, -legs.amount))::bigint AS debit, count(*) AS n
			FROM legs GROUP BY legs.account),
		posted AS (
			UPDATE accounts a SET balance = a.balance + net.amount,
					      held = a.held - net.debit,
					      version = a.version + net.n
			FROM net WHERE a.id = net.account
			RETURNING a.id, a.balance, a.currency)
		INSERT INTO entries (txn, payment_id, account, amount, currency, balance_after)
			SELECT legs.txn, legs.payment_id, legs.account, legs.amount, posted.currency,
			       posted.balance - coalesce(sum(legs.amount) OVER (
					PARTITION BY legs.account ORDER BY legs.ord
					ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), 0)
			FROM legs JOIN posted ON posted.id = legs.account
			ORDER BY legs.ord;
		GET DIAGNOSTICS v_posted = ROW_COUNT;
		IF v_posted <> cardinality(v_accounts) THEN
			RAISE EXCEPTION 'ledger_commit: an account of txns % is gone', v_claimed
				USING ERRCODE = 'foreign_key_violation';
		END IF;
	END IF;

	RETURN QUERY SELECT c.txn, 'committed'::text FROM unnest(v_claimed) AS c(txn);
	RETURN QUERY
		SELECT q.txn, CASE WHEN b.state = 'committed' THEN 'already'
				   ELSE 'protocol_violation' END
		FROM (SELECT DISTINCT t.txn FROM unnest(p_txns) AS t(txn)
		      WHERE t.txn <> ALL (v_claimed)) q
		LEFT JOIN barrier b ON b.txn = q.txn AND b.participant = p_participant;
END;
$$;

-- Release a txn. Returns 'aborted', 'already' or 'protocol_violation'
-- (it was committed: never un-commit). An abort before any prepare records
-- an aborted barrier so that the late prepare votes no.
CREATE OR REPLACE FUNCTION ledger_abort(p_txn bigint, p_participant text,
					p_payment_id text)
RETURNS text
LANGUAGE plpgsql
-- Generic plans: see "Plans" above.
SET plan_cache_mode = force_generic_plan AS $$
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
-- Version 3: ledger_prepare_set reserves for a batch, ledger_commit posts one.
INSERT INTO paytx_schema (component, version) VALUES ('ledger', 3)
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
		'ledger_prepare(bigint, text, text, jsonb), ledger_prepare_set(text, jsonb), '
		'ledger_commit(bigint[], text), ledger_abort(bigint, text, text), ledger_in_doubt(text, bigint, integer), '
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
			ledger_prepare(bigint, text, text, jsonb), ledger_prepare_set(text, jsonb),
			ledger_commit(bigint[], text),
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

-- Risk participant schema: limits, daily usage, reservations and the 2PC barrier.
--
-- Applied by pg_migrate as one script inside BEGIN/COMMIT by `paytxctl
-- migrate`, as the owner role, on every run, so everything here is
-- idempotent. The risk daemon only checks the version (paytx_schema).
-- One database of its own (PAYTX_RISK_DSN), never a ledger shard's: the
-- grants below would take the ledger's role's privileges on barrier away.
--
-- Limits are per (account, currency); the row of account '*' is the
-- default for every account without its own row (an account's row replaces
-- the default as a whole). A NULL limit is no limit. Only debits count: the
-- net of a payment's legs on an account, when negative.
--
-- prepare = in the batch's local transaction, lock the account's usage row
-- of the current UTC day, check the per-payment cap and committed +
-- reserved + this debit against the daily total, and reserve the debit
-- (so two concurrent payments cannot both squeeze under the limit; the
-- second waits for the first's row lock). commit moves the reservation from
-- reserved to committed; abort releases it. Usage is recorded for every
-- debited account, limited or not, so a limit set during the day counts
-- the day's earlier payments. Locks are taken in (account, currency) order,
-- COLLATE "C". Amounts are bigint minor units.

-- Serialise concurrent start-ups (the key the other schemas use: 'paytx').
SELECT pg_advisory_xact_lock(482671686776);

CREATE TABLE IF NOT EXISTS limits (
	account text NOT NULL CHECK (account = '*' OR account ~ '^[A-Za-z0-9._:-]{1,64}$'),
	currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	per_payment bigint CHECK (per_payment >= 0), -- largest debit in one payment
	daily bigint CHECK (daily >= 0),             -- debits per UTC day, in all
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, currency)
);

-- Debits per account, currency and UTC day (the day of the prepare).
CREATE TABLE IF NOT EXISTS daily_usage (
	account text NOT NULL,
	currency char(3) NOT NULL,
	day date NOT NULL,
	committed bigint NOT NULL DEFAULT 0 CHECK (committed >= 0),
	reserved bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0), -- prepared, undecided
	PRIMARY KEY (account, currency, day)
);

-- One reservation per (txn, account, currency): the debit a yes vote counted.
CREATE TABLE IF NOT EXISTS reservations (
	txn bigint NOT NULL,
	account text NOT NULL,
	currency char(3) NOT NULL,
	day date NOT NULL,                        -- the daily_usage row it counts in
	payment_id text,
	amount bigint NOT NULL CHECK (amount > 0),
	state text NOT NULL CHECK (state IN ('held', 'used', 'released')),
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (txn, account, currency)
);

-- What this participant did for a txn, as in the ledger schema.
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
CREATE INDEX IF NOT EXISTS barrier_in_doubt_idx ON barrier (updated_at)
	WHERE state = 'prepared';

-- The re-vote for a txn that already has a barrier row.
CREATE OR REPLACE FUNCTION risk_revote(b barrier)
RETURNS TABLE (vote boolean, reason text, detail text)
LANGUAGE sql IMMUTABLE AS $$
	SELECT b.state IN ('prepared', 'committed'),
	       CASE b.state WHEN 'refused' THEN b.reason WHEN 'aborted' THEN 'aborted' END,
	       CASE b.state WHEN 'refused' THEN b.detail
			    WHEN 'aborted' THEN 'the transaction was already aborted here'
	       END;
$$;

-- Why debit (of account, currency, with u its locked usage row) breaks the
-- limit that applies, or NULL when it does not.
CREATE OR REPLACE FUNCTION risk_breach(p_account text, p_currency text, p_debit bigint,
				       u daily_usage)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	lim limits%ROWTYPE;
	v_whose text;
BEGIN
	SELECT * INTO lim FROM limits WHERE currency = p_currency AND account IN (p_account, '*')
		ORDER BY account = '*' LIMIT 1;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	v_whose := CASE lim.account WHEN '*' THEN 'the default' ELSE 'its' END;
	IF p_debit > lim.per_payment THEN
		RETURN format('account %s debits %s %s, over %s per-payment limit of %s %s',
			      p_account, p_debit, p_currency, v_whose, lim.per_payment, p_currency);
	END IF;
	IF u.committed + u.reserved + p_debit > lim.daily THEN
		RETURN format('account %s has used %s of %s daily limit of %s %s on %s '
			      '(%s committed, %s reserved) and this payment needs %s',
			      p_account, u.committed + u.reserved, v_whose, lim.daily, p_currency,
			      u.day, u.committed, u.reserved, p_debit);
	END IF;
	RETURN NULL;
END;
$$;

-- Check the limits of every debited account of p_legs
-- ([{"account","amount","currency"}], all the payment's legs), reserve the
-- debits and vote. Nothing but the usage rows is written before the barrier
-- row is claimed, so a concurrent duplicate prepare (another replica) waits
-- for the first one and re-votes.
CREATE OR REPLACE FUNCTION risk_prepare(p_txn bigint, p_participant text,
					p_payment_id text, p_legs jsonb)
RETURNS TABLE (vote boolean, reason text, detail text)
LANGUAGE plpgsql AS $$
DECLARE
	b barrier%ROWTYPE;
	u daily_usage%ROWTYPE;
	d record;
	v_day date := (now() AT TIME ZONE 'UTC')::date;
	v_accounts text[] := '{}';  -- the debits to reserve, in lock order
	v_currencies text[] := '{}';
	v_debits bigint[] := '{}';
	v_detail text;
BEGIN
	SELECT * INTO b FROM barrier
		WHERE barrier.txn = p_txn AND barrier.participant = p_participant;
	IF FOUND THEN
		RETURN QUERY SELECT * FROM risk_revote(b);
		RETURN;
	END IF;
	IF jsonb_typeof(p_legs) IS DISTINCT FROM 'array' OR EXISTS (
		SELECT FROM jsonb_to_recordset(p_legs) AS l(account text, amount bigint, currency text)
		WHERE l.account IS NULL OR l.amount IS NULL OR l.currency IS NULL) THEN
		RAISE EXCEPTION 'risk_prepare: legs must be [{"account","amount","currency"}]'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	FOR d IN SELECT l.account, l.currency, -sum(l.amount)::bigint AS debit
		 FROM jsonb_to_recordset(p_legs) AS l(account text, amount bigint, currency text)
		 GROUP BY l.account, l.currency HAVING sum(l.amount) < 0
		 ORDER BY l.account COLLATE "C", l.currency COLLATE "C" LOOP
		INSERT INTO daily_usage (account, currency, day) VALUES (d.account, d.currency, v_day)
			ON CONFLICT DO NOTHING;
		SELECT * INTO STRICT u FROM daily_usage
			WHERE account = d.account AND currency = d.currency AND day = v_day FOR UPDATE;
		v_detail := risk_breach(d.account, d.currency, d.debit, u);
		EXIT WHEN v_detail IS NOT NULL;
		v_accounts := v_accounts || d.account;
		v_currencies := v_currencies || d.currency;
		v_debits := v_debits || d.debit;
	END LOOP;

	INSERT INTO barrier (txn, participant, payment_id, state, reason, detail)
		VALUES (p_txn, p_participant, p_payment_id,
			CASE WHEN v_detail IS NULL THEN 'prepared' ELSE 'refused' END,
			CASE WHEN v_detail IS NOT NULL THEN 'limit_exceeded' END, v_detail)
		ON CONFLICT (txn, participant) DO NOTHING;
	IF NOT FOUND THEN
		-- A concurrent duplicate got there first (we waited for its commit).
		SELECT * INTO STRICT b FROM barrier
			WHERE barrier.txn = p_txn AND barrier.participant = p_participant;
		RETURN QUERY SELECT * FROM risk_revote(b);
		RETURN;
	END IF;
	IF v_detail IS NOT NULL THEN
		RETURN QUERY SELECT false, 'limit_exceeded'::text, v_detail;
		RETURN;
	END IF;

	INSERT INTO reservations (txn, account, currency, day, payment_id, amount, state)
		SELECT p_txn, r.account, r.currency, v_day, p_payment_id, r.debit, 'held'
		FROM unnest(v_accounts, v_currencies, v_debits) AS r(account, currency, debit);
	FOR i IN 1 .. cardinality(v_accounts) LOOP
		UPDATE daily_usage SET reserved = reserved + v_debits[i]
			WHERE account = v_accounts[i] AND currency = v_currencies[i] AND day = v_day;
	END LOOP;
	RETURN QUERY SELECT true, NULL::text, NULL::text;
END;
$$;

-- Move txn's held reservations to p_state ('used': reserved -> committed;
-- 'released': reserved -> nothing), usage rows locked in key order.
CREATE OR REPLACE FUNCTION risk_settle(p_txn bigint, p_state text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r reservations%ROWTYPE;
BEGIN
	FOR r IN SELECT * FROM reservations WHERE txn = p_txn AND state = 'held'
		 ORDER BY account COLLATE "C", currency COLLATE "C" LOOP
		UPDATE daily_usage
			SET reserved = reserved - r.amount,
			    committed = committed + CASE WHEN p_state = 'used' THEN r.amount ELSE 0 END
			WHERE account = r.account AND currency = r.currency AND day = r.day;
	END LOOP;
	UPDATE reservations SET state = p_state WHERE txn = p_txn AND state = 'held';
END;
$$;

-- Count a prepared txn's reservations as used. Returns 'committed',
-- 'already' or 'protocol_violation' (no yes vote recorded).
CREATE OR REPLACE FUNCTION risk_commit(p_txn bigint, p_participant text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_state text;
BEGIN
	SELECT state INTO v_state FROM barrier
		WHERE txn = p_txn AND participant = p_participant FOR UPDATE;
	IF v_state = 'committed' THEN
		RETURN 'already';
	ELSIF v_state IS DISTINCT FROM 'prepared' THEN
		RETURN 'protocol_violation';
	END IF;
	PERFORM risk_settle(p_txn, 'used');
	UPDATE barrier SET state = 'committed', updated_at = now()
		WHERE txn = p_txn AND participant = p_participant;
	RETURN 'committed';
END;
$$;

-- Release a txn. Returns 'aborted', 'already' or 'protocol_violation'
-- (it was committed). An abort before any prepare records an aborted
-- barrier so that the late prepare votes no.
CREATE OR REPLACE FUNCTION risk_abort(p_txn bigint, p_participant text, p_payment_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_state text;
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
		SELECT state INTO STRICT v_state FROM barrier
			WHERE txn = p_txn AND participant = p_participant FOR UPDATE;
	END IF;
	IF v_state = 'aborted' THEN
		RETURN 'already';
	ELSIF v_state = 'committed' THEN
		RETURN 'protocol_violation';
	ELSIF v_state = 'prepared' THEN
		PERFORM risk_settle(p_txn, 'released');
	END IF;
	UPDATE barrier SET state = 'aborted', updated_at = now()
		WHERE txn = p_txn AND participant = p_participant;
	RETURN 'aborted';
END;
$$;

-- Txns with a yes vote and no decision since before p_older_than_ms.
CREATE OR REPLACE FUNCTION risk_in_doubt(p_participant text, p_older_than_ms bigint,
					 p_limit integer)
RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
	SELECT txn FROM barrier
	WHERE state = 'prepared' AND participant = p_participant
	  AND updated_at < to_timestamp(p_older_than_ms / 1000.0)
	ORDER BY updated_at, txn
	LIMIT p_limit;
$$;

-- Bump the version with PG_SCHEMA_RISK_VERSION in src/lib/pg.h whenever this
-- file changes what paytx-risk needs.
CREATE TABLE IF NOT EXISTS paytx_schema (
	component text PRIMARY KEY,
	version integer NOT NULL,
	migrated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO paytx_schema (component, version) VALUES ('risk', 1)
	ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, migrated_at = now();

-- Privileges. The role running this script owns every object. The risk
-- role (paytx_risk) may read the limits (paytxctl sets them, as the owner),
-- keep usage, reservations and the barrier, and run the step functions;
-- it deletes nothing. The other daemons' roles get nothing here.
-- Re-applied in full by every migration; missing roles are skipped.
DO $$
DECLARE
	v_db_owner boolean := (SELECT pg_has_role(current_user, datdba, 'MEMBER')
			       FROM pg_database WHERE datname = current_database());
	v_funcs constant text := 'FUNCTION risk_revote(barrier), '
		'risk_breach(text, text, bigint, daily_usage), '
		'risk_prepare(bigint, text, text, jsonb), risk_commit(bigint, text), '
		'risk_settle(bigint, text), risk_abort(bigint, text, text), '
		'risk_in_doubt(text, bigint, integer)';
	v_tables constant text := 'limits, daily_usage, reservations, barrier, paytx_schema';
	v_role text;
BEGIN
	IF v_db_owner THEN
		EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
	END IF;
	REVOKE ALL ON SCHEMA public FROM PUBLIC;
	EXECUTE 'REVOKE ALL ON ' || v_tables || ' FROM PUBLIC';
	EXECUTE 'REVOKE ALL ON ' || v_funcs || ' FROM PUBLIC';
	FOREACH v_role IN ARRAY ARRAY['paytx_coordinator', 'paytx_ledger'] LOOP
		CONTINUE WHEN NOT EXISTS (SELECT FROM pg_roles WHERE rolname = v_role);
		EXECUTE format('REVOKE ALL ON %s FROM %I', v_tables, v_role);
		EXECUTE format('REVOKE ALL ON %s FROM %I', v_funcs, v_role);
		EXECUTE format('REVOKE ALL ON SCHEMA public FROM %I', v_role);
		IF v_db_owner THEN
			EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', current_database(), v_role);
		END IF;
	END LOOP;
	IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'paytx_risk') THEN
		EXECUTE 'REVOKE ALL ON ' || v_tables || ' FROM paytx_risk';
		EXECUTE 'REVOKE ALL ON ' || v_funcs || ' FROM paytx_risk';
		IF v_db_owner THEN
			EXECUTE format('GRANT CONNECT ON DATABASE %I TO paytx_risk',
				       current_database());
		END IF;
		GRANT USAGE ON SCHEMA public TO paytx_risk;
		GRANT SELECT ON paytx_schema, limits TO paytx_risk;
		-- FOR UPDATE on a usage row needs UPDATE on some column.
		GRANT SELECT, INSERT, UPDATE (committed, reserved) ON daily_usage TO paytx_risk;
		GRANT SELECT, INSERT, UPDATE (state) ON reservations TO paytx_risk;
		GRANT SELECT, INSERT, UPDATE (state, updated_at) ON barrier TO paytx_risk;
		EXECUTE 'GRANT EXECUTE ON ' || v_funcs || ' TO paytx_risk';
	END IF;
END
$$;

-- Run once by the postgres image on an empty data directory
-- (/docker-entrypoint-initdb.d), as POSTGRES_USER (paytx, a superuser).
--
-- The roles (see README.md, Configuration): paytx_owner owns the databases
-- and runs `paytxctl migrate` (the compose "migrate" service), which creates
-- the schemas and grants paytx_coordinator the coordinator log,
-- paytx_ledger the ledger shards, paytx_risk the risk database and
-- paytx_cache read access for the balance cache, nothing more. None of them is a superuser
-- or may create roles or databases. Their passwords come from the
-- container's environment (docker-compose.yml), read with psql's \getenv.
\getenv owner_password PAYTX_PG_OWNER_PASSWORD
\getenv coordinator_password PAYTX_PG_COORDINATOR_PASSWORD
\getenv ledger_password PAYTX_PG_LEDGER_PASSWORD
\getenv risk_password PAYTX_PG_RISK_PASSWORD
\getenv cache_password PAYTX_PG_CACHE_PASSWORD

CREATE ROLE paytx_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE paytx_coordinator LOGIN PASSWORD :'coordinator_password';
CREATE ROLE paytx_ledger LOGIN PASSWORD :'ledger_password';
CREATE ROLE paytx_risk LOGIN PASSWORD :'risk_password';
CREATE ROLE paytx_cache LOGIN PASSWORD :'cache_password';

-- One database for the coordinator log, one per ledger shard, one for the
-- risk participant's limits. Who may
-- connect to which is set by the migration (CONNECT is revoked from PUBLIC).
CREATE DATABASE paytx_coord OWNER paytx_owner;
CREATE DATABASE paytx_ledger0 OWNER paytx_owner;
CREATE DATABASE paytx_ledger1 OWNER paytx_owner;
CREATE DATABASE paytx_risk OWNER paytx_owner;

-- Run once by the postgres image on an empty data directory
-- (/docker-entrypoint-initdb.d), as POSTGRES_USER (paytx, a superuser).
-- One database for the coordinator log, one per ledger shard; paytxctl
-- migrate (the compose "migrate" service) then applies the schemas.
CREATE DATABASE paytx_coord;
CREATE DATABASE paytx_ledger0;
CREATE DATABASE paytx_ledger1;

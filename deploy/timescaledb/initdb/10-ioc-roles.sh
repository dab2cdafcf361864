#!/bin/bash
# First start only (empty data directory): the application's roles and database.
#   ioc          owns the ioc database; `ioc migrate` creates the schema as this role.
#   ioc_grafana  logs in read-only; grafana-grants.sql gives it SELECT on the dashboard tables.
# Passwords arrive as environment variables and reach SQL as psql variables (:'name'),
# which psql quotes: no password text is ever spliced into a statement.
set -euo pipefail

: "${IOC_DB_PASSWORD:?IOC_DB_PASSWORD is required}"
: "${GRAFANA_DB_PASSWORD:?GRAFANA_DB_PASSWORD is required}"

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
     -v ioc_password="$IOC_DB_PASSWORD" -v grafana_password="$GRAFANA_DB_PASSWORD" <<'SQL'
CREATE ROLE ioc LOGIN PASSWORD :'ioc_password';
CREATE ROLE ioc_grafana LOGIN PASSWORD :'grafana_password' CONNECTION LIMIT 10;
-- `ioc migrate` reads shared_preload_libraries to choose the storage layout; a
-- non-superuser needs this predefined role to see it.
GRANT pg_read_all_settings TO ioc;
ALTER ROLE ioc_grafana SET default_transaction_read_only = on;
ALTER ROLE ioc_grafana SET statement_timeout = '30s';
CREATE DATABASE ioc OWNER ioc;
REVOKE ALL ON DATABASE ioc FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE ioc TO ioc;
GRANT CONNECT ON DATABASE ioc TO ioc_grafana;
SQL

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname ioc <<'SQL'
-- TimescaleDB where the server preloads it (the images do); plain PostgreSQL works too.
SELECT 'CREATE EXTENSION IF NOT EXISTS timescaledb'
 WHERE current_setting('shared_preload_libraries') LIKE '%timescaledb%' \gexec
CREATE EXTENSION IF NOT EXISTS pg_trgm;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO ioc;
SQL

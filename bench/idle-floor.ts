import { join } from 'node:path';
import { connect } from 'node:tls';
import Database from 'better-sqlite3';
import { readClientTls, readIdentity } from '../identity/identity-store.js';

/**
 * The floor under an idle agent: a node process that does what any agent must and nothing of
 * ours — opens a SQLite file in WAL mode with better-sqlite3 and writes a row, makes one mTLS
 * connection to the cloud with the terminal's own key and certificate (and keeps it while the
 * cloud does), and idles on a 1 s timer. `node idle-floor.js STATE_DIR CLOUD_URL SCRATCH_DIR`;
 * prints `ready` once its handshake is done. The bench reads its RSS beside the agent's.
 */
const [stateDir, cloudUrl, scratch] = process.argv.slice(2) as [string, string, string];
const db = new Database(join(scratch, 'floor.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, at TEXT)');
db.prepare('INSERT INTO t (at) VALUES (?)').run(new Date().toISOString());
const identity = await readIdentity(stateDir);
if (!identity) throw new Error(`no identity in ${stateDir}`);
const tls = await readClientTls(identity);
const url = new URL(cloudUrl);
const s = connect({ host: url.hostname, port: Number(url.port), servername: url.hostname, ...tls });
s.on('error', () => {});
s.on('data', () => {});
s.once('secureConnect', () => process.stdout.write('ready\n'));
setInterval(() => {}, 1000);

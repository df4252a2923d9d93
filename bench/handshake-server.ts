import { generateKeyPairSync } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:tls';
import { sessionOptions } from '../cloud/api/https-listener.js';
import { TLS_SERVER_POLICY } from '../cloud/api/tls-policy.js';
import { FleetCa } from '../cloud/identity/fleet-ca.js';
import { verifyPeersAtHandshake } from '../cloud/identity/terminal-auth.js';
import { ticketKeysFrom } from '../cloud/identity/ticket-keys.js';
import { buildCertificate, buildCsr, ext, OID } from '../protocol/x509.js';

/**
 * The cloud's TLS handshake alone, in its own process so its CPU can be read from /proc: the
 * cloud's TLS policy, its session ticket options, client certificates asked for and verified
 * once per connection by the cloud's own check (terminal-auth.ts) — a fleet CA, server and
 * terminal certificate of the key type asked for (`p256`, or `rsa` as before issue 23). The
 * client closes each connection once its handshake is done (or, with `hold`, keeps it). Prints
 * `{port, ca, cert, key}` (the terminal's).
 */
const kind = process.argv[2] === 'rsa' ? 'rsa' : process.argv[2] === 'bare' ? 'bare' : 'p256';

function keys() {
  return kind === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}
const pem = (k: ReturnType<typeof keys>['privateKey']) =>
  k.export({ type: 'pkcs8', format: 'pem' }).toString();

const caKeys = keys();
const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const caPem = buildCertificate({
  subject: [{ type: OID.commonName, value: `bench fleet CA ${kind}` }],
  publicKey: caKeys.publicKey,
  signingKey: caKeys.privateKey,
  serialHex: '01',
  notBefore: new Date(now.getTime() - 60_000),
  notAfter: new Date(now.getTime() + 86_400_000),
  extensions: [
    ext.basicConstraints(true),
    ext.keyUsage('ca-signing'),
    ext.subjectKeyIdentifier(caKeys.publicKey),
  ],
});
const ca = FleetCa.load(caPem, pem(caKeys.privateKey));
const serverKey = pem(keys().privateKey);
const serverCert = ca.issueServerCertificate(serverKey, ['localhost', '127.0.0.1'], now);
const terminal = keys();
const terminalCert = ca.issueClientCertificate(
  buildCsr(terminal.privateKey, terminal.publicKey, 'x'),
  'term_bench',
  now,
  1,
).certificatePem;

const ticketed = sessionOptions(ticketKeysFrom(Buffer.alloc(32, 7)), caPem, Date.now());
// `bare`: Node's own defaults, no client certificate asked for, nothing of ours on the socket.
const server =
  kind === 'bare'
    ? createServer({ key: serverKey, cert: serverCert, ticketKeys: ticketed.ticketKeys })
    : createServer({
        key: serverKey,
        cert: serverCert,
        ca: [caPem],
        requestCert: true,
        rejectUnauthorized: false,
        ...TLS_SERVER_POLICY,
        ...ticketed,
      });
if (kind !== 'bare') verifyPeersAtHandshake(server, caPem);
// `hold` (argv[3]): connections are kept open, as a cloud keeps its terminals' links, and each
// line on stdin is answered with this process's RSS and V8 heap and how many it holds.
const hold = process.argv[3] === 'hold';
const held = new Set<unknown>();
// Otherwise the client closes once it has what it came for (its handshake, and in resumed mode its ticket).
server.on('secureConnection', (s) => {
  s.on('error', () => {});
  s.resume();
  if (hold) {
    held.add(s);
    s.once('close', () => held.delete(s));
  }
  s.once('end', () => s.end());
});
if (hold)
  process.stdin.on('data', () => {
    process.stdout.write(
      `${JSON.stringify({ rss: process.memoryUsage.rss(), heapUsed: process.memoryUsage().heapUsed, held: held.size })}\n`,
    );
  });
server.on('tlsClientError', () => {});
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(
    `${JSON.stringify({ port, ca: caPem, cert: terminalCert, key: pem(terminal.privateKey) })}\n`,
  );
});
process.on('SIGINT', () => process.exit(0));

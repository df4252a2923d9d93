import { createPublicKey, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FleetCa, newPrivateKeyPem } from './fleet-ca.js';
import { writeSecretFile } from './secret-files.js';

/** The admin token REST callers present (`Authorization: Bearer`): 256 random bits, hex. */
export function newAdminToken(): string {
  return randomBytes(32).toString('hex');
}

export type CloudIdentity = Awaited<ReturnType<typeof loadOrCreateIdentity>>;

/** Loads the cloud's identity from the data dir, creating it on first start. */
export async function loadOrCreateIdentity(dir: string, hosts: string[], now: Date) {
  const files = {
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverKey: join(dir, 'server.key'),
    dataKey: join(dir, 'data.key'),
    adminToken: join(dir, 'admin-token'),
  };
  let ca: FleetCa;
  if (existsSync(files.caCert) && existsSync(files.caKey)) {
    ca = FleetCa.load(await readFile(files.caCert, 'utf8'), await readFile(files.caKey, 'utf8'));
  } else {
    const created = await FleetCa.create(`posagent fleet CA ${hostname()}`, now);
    await writeSecretFile(files.caKey, created.keyPem, 0o600);
    await writeSecretFile(files.caCert, created.ca.certificatePem, 0o644);
    ca = created.ca;
  }
  // A new cloud's CA and server key are P-256; an existing data dir keeps what it has (its agents
  // pin that CA: it must not change under them).
  if (!existsSync(files.serverKey))
    await writeSecretFile(files.serverKey, await newPrivateKeyPem('p256'), 0o600);
  // The data key: terminals seal card data to its public half (RSA-OAEP); only the cloud can open it.
  if (!existsSync(files.dataKey)) await writeSecretFile(files.dataKey, await newPrivateKeyPem(2048), 0o600);
  const dataPrivateKey = await readFile(files.dataKey, 'utf8');
  const dataPublicKey = createPublicKey(dataPrivateKey).export({ type: 'spki', format: 'pem' }).toString();
  if (!existsSync(files.adminToken)) await writeSecretFile(files.adminToken, `${newAdminToken()}\n`, 0o600);
  const serverKey = await readFile(files.serverKey, 'utf8');
  // Re-issued at every start: it follows --host and never expires under a long-running fleet.
  const serverCert = ca.issueServerCertificate(serverKey, hosts, now);
  const adminToken = (await readFile(files.adminToken, 'utf8')).trim();
  return {
    ca,
    serverKey,
    serverCert,
    adminToken,
    dataPrivateKey,
    dataPublicKey,
    caFile: files.caCert,
    adminTokenFile: files.adminToken,
  };
}

/** `DIR/cloud.json`: what `serve` also prints when ready (`{url, caFile, adminTokenFile}`). */
export async function writeReadyFile(
  dir: string,
  ready: { url: string; caFile: string; adminTokenFile: string },
) {
  await writeSecretFile(join(dir, 'cloud.json'), `${JSON.stringify(ready, null, 2)}\n`, 0o644);
}

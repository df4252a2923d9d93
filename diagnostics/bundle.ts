import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openStoreReadOnly } from '../agent/agent-store.js';
import type { StatusDocument } from '../agent/status/status-document.js';
import { readIdentity, summariseCertificate } from '../identity/identity-store.js';
import { scrub } from '../protocol/redaction.js';
import type { DiagnosticsReport } from './report.js';

/**
 * The support bundle a technician attaches to an escalation: the report, the status, the device
 * settings, the certificate's public facts, the PeakPOS escalation fields, recent logs and the
 * queue's summary — as a .tar.gz. Never in it: the private key, tokens, card data (the queue is
 * listed without its sealed card blobs, URLs lose their credentials, logs are filtered).
 */
export interface BundleInputs {
  file: string;
  stateDir: string;
  dbFile: string;
  report: DiagnosticsReport;
  status: StatusDocument;
  settings: Record<string, unknown>;
  serialNumber: string | null;
  now(): number;
}

const run = promisify(execFile);

async function recentLogs(): Promise<string> {
  try {
    const { stdout } = await run(
      'journalctl',
      ['-u', 'posagent', '-n', '500', '--no-pager', '-o', 'short-iso'],
      {
        timeout: 10_000,
        maxBuffer: 8 * 1024 * 1024,
      },
    );
    return stdout || 'journalctl returned no lines for unit posagent\n';
  } catch (err) {
    return `no journald logs: ${(err as Error).message.split('\n')[0]}\n`;
  }
}

export async function writeBundle(b: BundleInputs): Promise<{ file: string; entries: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'posagent-bundle-'));
  try {
    const identity = await readIdentity(b.stateDir).catch(() => null);
    let certificate: Record<string, unknown> | null = null;
    if (identity) {
      try {
        certificate = { ...summariseCertificate(await readFile(identity.paths.certFile, 'utf8'), b.now()) };
      } catch (err) {
        certificate = { error: (err as Error).message };
      }
    }
    let queue: unknown = null;
    let config: unknown = null;
    try {
      const store = openStoreReadOnly(b.dbFile);
      if (store) {
        queue = {
          summary: store.transactions?.summary() ?? null,
          recent: (store.transactions?.list(null, 50) ?? []).map((t) => ({
            id: t.id,
            seq: t.seq,
            amount: t.amount,
            currency: t.currency,
            state: t.state,
            offline: t.offline === 1,
            createdAt: t.createdAt,
            updatedAt: t.updatedAt,
            reason: t.reason,
            hasCard: t.sealedCard !== null,
          })),
          outboxDepth: store.outboxDepth(),
        };
        config = { applied: store.appliedConfig(), lastRejected: store.lastRejection() };
        store.close();
      }
    } catch (err) {
      queue = { error: (err as Error).message };
    }
    // The fields the PeakPOS guide asks for when escalating.
    const escalation = {
      terminalName: identity?.name ?? null,
      terminalId: identity?.terminalId ?? null,
      locationId: identity?.locationId ?? null,
      storeName: identity?.locationName ?? null,
      organizationSlug: identity?.organizationSlug ?? null,
      cloudUrl: identity?.cloudUrl ?? null,
      serialNumber: b.serialNumber ?? identity?.serialNumber ?? null,
      model: identity?.model ?? null,
      softwareVersion: b.status.softwareVersion,
      lastHeartbeatAt: b.status.link.lastHeartbeatAt,
      linkState: b.status.link.state,
      linkReason: b.status.link.reason ?? null,
      certificateNotAfter: b.status.certificate.notAfter,
      failedChecks: b.report.checks.filter((c) => c.status === 'fail').map((c) => c.id),
      generatedAt: new Date(b.now()).toISOString(),
    };
    const files: Record<string, string> = {
      'escalation.json': JSON.stringify(escalation, null, 2),
      'report.json': JSON.stringify(b.report, null, 2),
      'status.json': JSON.stringify(b.status, null, 2),
      'settings.json': JSON.stringify(b.settings, null, 2),
      'certificate.json': JSON.stringify(certificate, null, 2),
      'queue.json': JSON.stringify(queue, null, 2),
      'config.json': JSON.stringify(config, null, 2),
      'logs.txt': await recentLogs(),
    };
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), `${scrub(text)}\n`);
    const tar = await import('tar');
    const entries = Object.keys(files);
    await tar.c({ gzip: true, file: b.file, cwd: dir, portable: true }, entries);
    return { file: b.file, entries };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

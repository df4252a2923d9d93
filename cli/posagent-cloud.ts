#!/usr/bin/env node
import { Command, Option } from 'commander';
import pino from 'pino';
import { CLOUD_DEFAULTS, type CloudOptions, startCloud } from '../cloud/main.js';
import { integer, jsonRequested, quietWhenJson, text, usageError } from './arguments.js';
import { exitOnUnhandled } from './fatal-errors.js';
import { readSoftwareVersion } from './software-version.js';

/**
 * `posagent-cloud`: the reference cloud's commands. Exit codes as `posagent`'s (GUIDE §5.1): 0 ok,
 * 1 failed, 2 usage — a bad value (`--port 99999`, `--log-level loud`) is refused before anything
 * is created. Every command prints JSON; with `--json`, errors are one JSON document on stdout too.
 */
const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
const json = jsonRequested(process.argv.slice(2));

/** A non-negative integer flag (seconds, counts), bounded so that a typo cannot pass. */
const int = (name: string) => integer(name, 0, 2_147_483_647);
const JSON_HELP = 'errors as one JSON document on stdout too (the output is JSON already)';

function fail(code: string, message: string, exitCode: number): never {
  if (json) process.stdout.write(`${JSON.stringify({ error: { code, message } }, null, 2)}\n`);
  else process.stderr.write(`posagent-cloud: ${message}\n`);
  process.exit(exitCode);
}

interface ServeFlags {
  dataDir: string;
  host: string;
  port: number;
  heartbeatInterval: number;
  pingInterval: number;
  atRiskAfter: number;
  offlineAfter: number;
  certDays: number;
  enrollMaxFailures: number;
  pairingTtl: number;
  webhookRetryBaseMs: number;
  webhookMaxAttempts: number;
  statusSweepMs: number;
  actionTtl: number;
  maxNewLinksPerSec: number;
  clockOffsetSec: number;
  allowSerialOnlyPreregistration?: boolean;
  logLevel: string;
}

const program = quietWhenJson(
  new Command('posagent-cloud')
    .description('The posagent reference cloud: fleet CA, fleet REST API and the agent gateway')
    .version(readSoftwareVersion())
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)'),
  json,
);

program
  .command('serve')
  .description(
    'run the cloud; prints one JSON line {url, caFile, adminTokenFile} on stdout when ready, logs on stderr',
  )
  .requiredOption(
    '--data-dir <dir>',
    'where the CA, admin token and SQLite live (created on first start)',
    text('--data-dir'),
  )
  .option('--host <host>', 'address to listen on', text('--host'), CLOUD_DEFAULTS.host)
  .option(
    '--port <port>',
    'port to listen on (0–65535; 0: any free port)',
    integer('--port', 0, 65_535),
    CLOUD_DEFAULTS.port,
  )
  .option(
    '--heartbeat-interval <sec>',
    'heartbeat interval given to agents',
    int('--heartbeat-interval'),
    CLOUD_DEFAULTS.heartbeatIntervalSec,
  )
  .option(
    '--ping-interval <sec>',
    'WebSocket ping interval on agent links',
    int('--ping-interval'),
    CLOUD_DEFAULTS.pingIntervalSec,
  )
  .option(
    '--at-risk-after <sec>',
    'no heartbeat for this long → needs_attention',
    int('--at-risk-after'),
    CLOUD_DEFAULTS.atRiskAfterSec,
  )
  .option(
    '--offline-after <sec>',
    'no heartbeat for this long → offline',
    int('--offline-after'),
    CLOUD_DEFAULTS.offlineAfterSec,
  )
  .option(
    '--cert-days <days>',
    'lifetime of client certificates',
    int('--cert-days'),
    CLOUD_DEFAULTS.certDays,
  )
  .option(
    '--enroll-max-failures <n>',
    'failed enrollment attempts per address per window',
    int('--enroll-max-failures'),
    CLOUD_DEFAULTS.enrollMaxFailures,
  )
  .option(
    '--pairing-ttl <sec>',
    'how long a code shown by a device waiting to be paired stays valid',
    int('--pairing-ttl'),
    CLOUD_DEFAULTS.pairingTtlSec,
  )
  .option(
    '--webhook-retry-base-ms <ms>',
    'first webhook retry after this; doubles up to an hour',
    int('--webhook-retry-base-ms'),
    CLOUD_DEFAULTS.webhookRetryBaseMs,
  )
  .option(
    '--webhook-max-attempts <n>',
    'webhook attempts before a delivery is marked failed',
    int('--webhook-max-attempts'),
    CLOUD_DEFAULTS.webhookMaxAttempts,
  )
  .option(
    '--status-sweep-ms <ms>',
    'how often statuses are checked for time-based changes (webhooks)',
    int('--status-sweep-ms'),
    CLOUD_DEFAULTS.statusSweepMs,
  )
  .option(
    '--action-ttl <sec>',
    'an action not delivered within this long fails as expired (unless the request sets ttlSeconds)',
    int('--action-ttl'),
    CLOUD_DEFAULTS.actionTtlSec,
  )
  .option(
    '--max-new-links-per-sec <n>',
    'agent links admitted per second (a reconnect storm beyond it gets 503 cloud_busy and backs off); 0: no limit',
    int('--max-new-links-per-sec'),
    CLOUD_DEFAULTS.maxNewLinksPerSec,
  )
  .option(
    '--clock-offset-sec <sec>',
    "for tests and demos: run the cloud's clock this many seconds off the host's (negative: behind)",
    integer('--clock-offset-sec', -3_153_600_000, 3_153_600_000),
    CLOUD_DEFAULTS.clockOffsetSec,
  )
  .option(
    '--allow-serial-only-preregistration',
    'UNSAFE: accept pre-registrations without a factory key or manufacturer CA (zero-touch by serial alone; anyone who knows such a serial gets its certificate)',
  )
  .addOption(
    new Option('--log-level <level>', 'log level')
      .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default(CLOUD_DEFAULTS.logLevel),
  )
  .option('--json', JSON_HELP)
  .action(async (f: ServeFlags) => {
    exitOnUnhandled(pino({ base: { service: 'posagent-cloud' } }, pino.destination({ fd: 2, sync: true })));
    const options: CloudOptions = {
      dataDir: f.dataDir,
      host: f.host,
      port: f.port,
      heartbeatIntervalSec: f.heartbeatInterval,
      pingIntervalSec: f.pingInterval,
      atRiskAfterSec: f.atRiskAfter,
      offlineAfterSec: f.offlineAfter,
      certDays: f.certDays,
      enrollMaxFailures: f.enrollMaxFailures,
      enrollWindowSec: CLOUD_DEFAULTS.enrollWindowSec,
      pairingTtlSec: f.pairingTtl,
      pairingPollMs: CLOUD_DEFAULTS.pairingPollMs,
      webhookRetryBaseMs: f.webhookRetryBaseMs,
      webhookMaxAttempts: f.webhookMaxAttempts,
      statusSweepMs: f.statusSweepMs,
      actionTtlSec: f.actionTtl,
      maxNewLinksPerSec: f.maxNewLinksPerSec,
      clockOffsetSec: f.clockOffsetSec,
      allowSerialOnlyPreregistration: f.allowSerialOnlyPreregistration === true,
      logLevel: f.logLevel,
    };
    const cloud = await startCloud(options);
    process.stdout.write(
      `${JSON.stringify({ url: cloud.url, caFile: cloud.caFile, adminTokenFile: cloud.adminTokenFile })}\n`,
    );
    const shutdown = () => {
      const force = setTimeout(() => process.exit(1), 5000);
      force.unref();
      void cloud.stop().then(() => process.exit(0));
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  });

program
  .command('release-key')
  .description(
    'make an Ed25519 release key pair: release-key.pem (private, 0600, keep it off the cloud) and release-key.pub.pem (pin it on terminals)',
  )
  .requiredOption('--out <dir>', 'directory to write the two files to', text('--out'))
  .option('--json', JSON_HELP)
  .action(async (f: { out: string }) => {
    const { newReleaseKeyPair } = await import('../cloud/release-signing.js');
    const { mkdir, writeFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    await mkdir(f.out, { recursive: true });
    const pair = await newReleaseKeyPair();
    const privateFile = join(f.out, 'release-key.pem');
    const publicFile = join(f.out, 'release-key.pub.pem');
    await writeFile(privateFile, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
    await writeFile(publicFile, pair.publicKeyPem, { mode: 0o644, flag: 'wx' });
    process.stdout.write(`${JSON.stringify({ privateKeyFile: privateFile, publicKeyFile: publicFile })}\n`);
  });

program
  .command('release-sign')
  .description(
    'sign an npm pack tarball with the release key; prints {version, sha256, size, signature[, downgradeSignature]} (publish with PUT /v1/releases/{version})',
  )
  .argument('<tarball>', 'the release tarball (npm pack)')
  .requiredOption('--key <file>', 'the release private key (release-key.pem)', text('--key'))
  .option(
    '--allow-downgrade',
    'also sign the permission to install this release over a newer one (PUT /v1/releases/{version}/downgrade-signature)',
  )
  .option('--json', JSON_HELP)
  .action(async (tarball: string, f: { key: string; allowDowngrade?: boolean }) => {
    const { signRelease } = await import('../cloud/release-signing.js');
    const { readFile } = await import('node:fs/promises');
    const descriptor = await signRelease(tarball, await readFile(f.key, 'utf8'), {
      allowDowngrade: f.allowDowngrade === true,
    });
    process.stdout.write(`${JSON.stringify(descriptor)}\n`);
  });

program.parseAsync().catch((err: Error & { code?: string }) => {
  const usage = usageError(err);
  if (usage) {
    // Without --json, commander has already written the error and the hint to stderr.
    if (json) fail(usage.code, usage.message, EXIT.usage);
    process.exit(EXIT.usage);
  }
  if (err.code?.startsWith('commander.')) process.exit(EXIT.ok); // --help, --version
  fail(err.code && /^[a-z_]+$/.test(err.code) ? err.code : 'failed', err.message, EXIT.failed);
});

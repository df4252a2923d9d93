#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import { CLOUD_DEFAULTS, type CloudOptions } from '../cloud/cloud-options.js';
import { startCloud } from '../cloud/main.js';
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

/** `--database`: a PostgreSQL URL (the shared store of several gateways). */
function databaseUrl(value: string): string {
  if (!/^postgres(ql)?:\/\/\S+$/.test(value))
    throw new InvalidArgumentError(
      `--database must be a PostgreSQL URL (postgres://user@host:port/db); "${value.slice(0, 40)}" is not`,
    );
  return value;
}
const DATABASE_HELP =
  'a PostgreSQL URL (postgres://…): the store is there, shared by every gateway given it; without it, SQLite in the data dir';

interface ServeFlags {
  dataDir: string;
  database?: string;
  host: string;
  port: number;
  heartbeatInterval: number;
  pingInterval: number;
  atRiskAfter: number;
  offlineAfter: number;
  certDays: number;
  certIssuedAgo: number;
  enrollMaxFailures: number;
  enrollGlobalMaxFailures: number;
  enrollWindow: number;
  pairingsPerSource: number;
  maxPendingPairings: number;
  expiredCodeRetention: number;
  pairingTtl: number;
  webhookRetryBaseMs: number;
  webhookMaxAttempts: number;
  statusSweepMs: number;
  actionTtl: number;
  maxNewLinksPerSec: number;
  configPushesPerSec: number;
  clockOffsetSec: number;
  allowSerialOnlyPreregistration?: boolean;
  envelopeWorkers: number;
  maxQueuedEnvelopes: number;
  linkEnvelopesPerSec: number;
  helloTimeout: number;
  activateWait: number;
  maxConnections: number;
  maxConnectionsPerSource: number;
  handshakeTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
  releasePublicKey: string[];
  allowPrivateWebhooks: boolean;
  portalIdleTimeout: number;
  portalSessionMax: number;
  signInMaxFailures: number;
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
    'where the CA, admin token, keys and SQLite live (created on first start); with --database, only the secrets',
    text('--data-dir'),
  )
  .option('--database <url>', DATABASE_HELP, databaseUrl)
  .option('--host <host>', 'address to listen on', text('--host'), CLOUD_DEFAULTS.host)
  .option(
    '--port <port>',
    'port to listen on (0–65535; 0: any free port)',
    integer('--port', 0, 65_535),
    CLOUD_DEFAULTS.port,
  )
  .option(
    '--heartbeat-interval <sec>',
    'heartbeat interval given to agents (1–3600, the range of agent.heartbeatIntervalSec)',
    integer('--heartbeat-interval', 1, 3600),
    CLOUD_DEFAULTS.heartbeatIntervalSec,
  )
  .option(
    '--ping-interval <sec>',
    'WebSocket ping interval on agent links (1–600, the range of agent.pingIntervalSec)',
    integer('--ping-interval', 1, 600),
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
    '--cert-issued-ago <sec>',
    'for tests and demos: client certificates are issued as if this long ago, part-way through their life (0 in production)',
    int('--cert-issued-ago'),
    CLOUD_DEFAULTS.certIssuedAgoSec,
  )
  .option(
    '--enroll-max-failures <n>',
    'failed attempts of one enrollment method (code, auto, pair) from one address per window',
    int('--enroll-max-failures'),
    CLOUD_DEFAULTS.enrollMaxFailures,
  )
  .option(
    '--enroll-global-max-failures <n>',
    'failed attempts of one enrollment method from all addresses together per window (0: no global budget)',
    int('--enroll-global-max-failures'),
    CLOUD_DEFAULTS.enrollGlobalMaxFailures,
  )
  .option(
    '--enroll-window <sec>',
    'the window of the enrollment budgets and of the pairing rate',
    int('--enroll-window'),
    CLOUD_DEFAULTS.enrollWindowSec,
  )
  .option(
    '--pairings-per-source <n>',
    'pairings one address may start per window (0: no limit)',
    int('--pairings-per-source'),
    CLOUD_DEFAULTS.pairingsPerSource,
  )
  .option(
    '--max-pending-pairings <n>',
    'pairings waiting for activation at once, at most (0: no limit)',
    int('--max-pending-pairings'),
    CLOUD_DEFAULTS.maxPendingPairings,
  )
  .option(
    '--expired-code-retention <sec>',
    'an unused enrollment code is deleted this long after it expired',
    int('--expired-code-retention'),
    CLOUD_DEFAULTS.expiredCodeRetentionSec,
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
    '--config-pushes-per-sec <n>',
    'config pushes started per second when one change touches many terminals (a template change): spread and jittered; a lone push goes at once',
    integer('--config-pushes-per-sec', 1, 100_000),
    CLOUD_DEFAULTS.configPushesPerSec,
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
  .option(
    '--envelope-workers <n>',
    'worker threads that open sealed card envelopes (0: one per core but one, 1–4)',
    int('--envelope-workers'),
    CLOUD_DEFAULTS.envelopeWorkers,
  )
  .option(
    '--max-queued-envelopes <n>',
    'card envelopes waiting for a worker across all links, at most; past it a forward is refused (cloud_busy)',
    int('--max-queued-envelopes'),
    CLOUD_DEFAULTS.maxQueuedEnvelopes,
  )
  .option(
    '--link-envelopes-per-sec <n>',
    'sealed card envelopes one link may forward per second (a batch past it waits, then is refused)',
    int('--link-envelopes-per-sec'),
    CLOUD_DEFAULTS.linkEnvelopesPerSec,
  )
  .option(
    '--activate-wait <sec>',
    "POST /v1/terminals/activate waits this long for the device's first Hello, then answers with its status (0: at once)",
    integer('--activate-wait', 0, 120),
    CLOUD_DEFAULTS.activateWaitSec,
  )
  .option(
    '--hello-timeout <sec>',
    'a link that sent no Hello this long after the upgrade is closed (1008)',
    int('--hello-timeout'),
    CLOUD_DEFAULTS.helloTimeoutSec,
  )
  .option(
    '--max-connections <n>',
    'connections at once in total (0: half the open-file limit past a reserve, at most 10,000)',
    int('--max-connections'),
    CLOUD_DEFAULTS.maxConnections,
  )
  .option(
    '--max-connections-per-source <n>',
    'connections at once from one address (IPv6: one /64); 0: no cap',
    int('--max-connections-per-source'),
    CLOUD_DEFAULTS.maxConnectionsPerSource,
  )
  .option(
    '--handshake-timeout-ms <ms>',
    'a TLS handshake must finish within this',
    int('--handshake-timeout-ms'),
    CLOUD_DEFAULTS.handshakeTimeoutMs,
  )
  .option(
    '--headers-timeout-ms <ms>',
    'request headers must arrive within this',
    int('--headers-timeout-ms'),
    CLOUD_DEFAULTS.headersTimeoutMs,
  )
  .option(
    '--request-timeout-ms <ms>',
    'a JSON request body must arrive within this (408); a release upload may take longer while it keeps moving',
    int('--request-timeout-ms'),
    CLOUD_DEFAULTS.requestTimeoutMs,
  )
  .option(
    '--keep-alive-timeout-ms <ms>',
    'an idle keep-alive connection is closed after this',
    int('--keep-alive-timeout-ms'),
    CLOUD_DEFAULTS.keepAliveTimeoutMs,
  )
  .option(
    '--idle-timeout-ms <ms>',
    'an HTTP connection with no activity is closed after this (agent links: pings decide)',
    int('--idle-timeout-ms'),
    CLOUD_DEFAULTS.idleTimeoutMs,
  )
  .option(
    '--release-public-key <file>',
    "the vendor's Ed25519 release public key (PEM; repeat for several): a release is published only if one of them signed it",
    (value: string, previous: string[]) => [...previous, value],
    [] as string[],
  )
  .option(
    '--allow-private-webhooks',
    'let webhooks go to loopback, private and link-local addresses (development on one machine only; refused by default)',
    false,
  )
  .option(
    '--portal-idle-timeout <sec>',
    'a support portal session unused this long is over (60–86400)',
    integer('--portal-idle-timeout', 60, 86_400),
    CLOUD_DEFAULTS.portalIdleTimeoutSec,
  )
  .option(
    '--portal-session-max <sec>',
    'a support portal session is over this long after sign-in (300–604800)',
    integer('--portal-session-max', 300, 604_800),
    CLOUD_DEFAULTS.portalSessionMaxSec,
  )
  .option(
    '--sign-in-max-failures <n>',
    'failed portal sign-ins from one address, or for one operator, per enrollment window (1–1000)',
    integer('--sign-in-max-failures', 1, 1000),
    CLOUD_DEFAULTS.signInMaxFailures,
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
      ...(f.database ? { database: f.database } : {}),
      releasePublicKeyFiles: f.releasePublicKey,
      allowPrivateWebhooks: f.allowPrivateWebhooks,
      host: f.host,
      port: f.port,
      heartbeatIntervalSec: f.heartbeatInterval,
      pingIntervalSec: f.pingInterval,
      atRiskAfterSec: f.atRiskAfter,
      offlineAfterSec: f.offlineAfter,
      certDays: f.certDays,
      certIssuedAgoSec: f.certIssuedAgo,
      enrollMaxFailures: f.enrollMaxFailures,
      enrollGlobalMaxFailures: f.enrollGlobalMaxFailures,
      enrollWindowSec: f.enrollWindow,
      pairingsPerSource: f.pairingsPerSource,
      maxPendingPairings: f.maxPendingPairings,
      expiredCodeRetentionSec: f.expiredCodeRetention,
      pairingTtlSec: f.pairingTtl,
      pairingPollMs: CLOUD_DEFAULTS.pairingPollMs,
      webhookRetryBaseMs: f.webhookRetryBaseMs,
      webhookMaxAttempts: f.webhookMaxAttempts,
      statusSweepMs: f.statusSweepMs,
      actionTtlSec: f.actionTtl,
      maxNewLinksPerSec: f.maxNewLinksPerSec,
      configPushesPerSec: f.configPushesPerSec,
      clockOffsetSec: f.clockOffsetSec,
      allowSerialOnlyPreregistration: f.allowSerialOnlyPreregistration === true,
      envelopeWorkers: f.envelopeWorkers,
      maxQueuedEnvelopes: f.maxQueuedEnvelopes,
      linkEnvelopesPerSec: f.linkEnvelopesPerSec,
      helloTimeoutSec: f.helloTimeout,
      activateWaitSec: f.activateWait,
      maxConnections: f.maxConnections,
      maxConnectionsPerSource: f.maxConnectionsPerSource,
      handshakeTimeoutMs: f.handshakeTimeoutMs,
      headersTimeoutMs: f.headersTimeoutMs,
      requestTimeoutMs: f.requestTimeoutMs,
      keepAliveTimeoutMs: f.keepAliveTimeoutMs,
      idleTimeoutMs: f.idleTimeoutMs,
      portalIdleTimeoutSec: f.portalIdleTimeout,
      portalSessionMaxSec: f.portalSessionMax,
      signInMaxFailures: f.signInMaxFailures,
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
    const { newReleaseKeyPair } = await import('../cloud/actions/release-signing.js');
    const { writeSecretFile } = await import('../cloud/identity/secret-files.js');
    const { mkdir } = await import('node:fs/promises');
    const { join } = await import('node:path');
    await mkdir(f.out, { recursive: true });
    const pair = await newReleaseKeyPair();
    const privateFile = join(f.out, 'release-key.pem');
    const publicFile = join(f.out, 'release-key.pub.pem');
    // Never over an existing key (exclusive), and fsynced before it is reported written.
    await writeSecretFile(privateFile, pair.privateKeyPem, 0o600, { exclusive: true });
    await writeSecretFile(publicFile, pair.publicKeyPem, 0o644, { exclusive: true });
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
    '--allow-downgrade-from <version>',
    'also sign the permission to install this release over newer ones, up to <version> (PUT /v1/releases/{version}/downgrade-signature)',
  )
  .option('--json', JSON_HELP)
  .action(async (tarball: string, f: { key: string; allowDowngradeFrom?: string }) => {
    const { signRelease } = await import('../cloud/actions/release-signing.js');
    const { readFile } = await import('node:fs/promises');
    const descriptor = await signRelease(tarball, await readFile(f.key, 'utf8'), {
      ...(f.allowDowngradeFrom ? { allowDowngradeFrom: f.allowDowngradeFrom } : {}),
    });
    process.stdout.write(`${JSON.stringify(descriptor)}\n`);
  });

const user = program
  .command('user')
  .description('operator accounts of the support portal (/portal/): add, list, passwd, role, remove');
const dataDirOption = () =>
  new Option('--data-dir <dir>', "the cloud's data dir (where cloud.db is)").makeOptionMandatory();
const databaseOption = () => new Option('--database <url>', DATABASE_HELP).argParser(databaseUrl);

/** Runs one operator-account change on a data dir's store and prints its JSON answer. */
async function withOperators(
  where: { dataDir: string; database?: string },
  fn: (a: import('../cloud/portal/operator-accounts.js').OperatorAccounts) => Promise<unknown> | unknown,
): Promise<void> {
  const { openOperatorAdmin } = await import('../cloud/operator-admin.js');
  const admin = await openOperatorAdmin(where.dataDir, where.database);
  try {
    process.stdout.write(`${JSON.stringify(await fn(admin.accounts), null, 2)}\n`);
  } finally {
    await admin.close();
  }
}

user
  .command('add')
  .description(
    'add an operator; the password comes from stdin (first line) or is asked twice on a terminal (12–256 characters)',
  )
  .argument('<name>', 'operator name (letters, digits, . _ -)')
  .addOption(
    new Option('--role <role>', 'what they may do').choices(['admin', 'support']).makeOptionMandatory(),
  )
  .addOption(dataDirOption())
  .addOption(databaseOption())
  .option('--json', JSON_HELP)
  .action(async (name: string, f: { role: string; dataDir: string; database?: string }) => {
    const { readPassword } = await import('./read-password.js');
    const password = await readPassword(`password for ${name}`);
    await withOperators(f, async (a) => await a.add(name, f.role, password));
  });

user
  .command('list')
  .description('list the operators (names, roles, when added; never a password)')
  .addOption(dataDirOption())
  .addOption(databaseOption())
  .option('--json', JSON_HELP)
  .action((f: { dataDir: string; database?: string }) =>
    withOperators(f, async (a) => ({ data: await a.list() })),
  );

user
  .command('passwd')
  .description("set an operator's password (stdin or asked); signs their sessions out")
  .argument('<name>', 'operator name')
  .addOption(dataDirOption())
  .addOption(databaseOption())
  .option('--json', JSON_HELP)
  .action(async (name: string, f: { dataDir: string; database?: string }) => {
    const { readPassword } = await import('./read-password.js');
    const password = await readPassword(`new password for ${name}`);
    await withOperators(f, async (a) => {
      await a.setPassword(name, password);
      return { name, passwordChanged: true };
    });
  });

user
  .command('role')
  .description("change an operator's role (takes effect on their next request)")
  .argument('<name>', 'operator name')
  .addOption(
    new Option('--role <role>', 'what they may do').choices(['admin', 'support']).makeOptionMandatory(),
  )
  .addOption(dataDirOption())
  .addOption(databaseOption())
  .option('--json', JSON_HELP)
  .action((name: string, f: { role: string; dataDir: string; database?: string }) =>
    withOperators(f, async (a) => await a.setRole(name, f.role)),
  );

user
  .command('remove')
  .description('remove an operator and sign their sessions out')
  .argument('<name>', 'operator name')
  .addOption(dataDirOption())
  .addOption(databaseOption())
  .option('--json', JSON_HELP)
  .action((name: string, f: { dataDir: string; database?: string }) =>
    withOperators(f, async (a) => {
      await a.remove(name);
      return { name, removed: true };
    }),
  );

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

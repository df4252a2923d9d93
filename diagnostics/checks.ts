import { existsSync } from 'node:fs';
import { readFile, stat, statfs } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { type AgentStoreReader, openStoreReadOnly } from '../agent/agent-store.js';
import { firstCloudUrl } from '../agent/link/cloud-addresses.js';
import type { AgentPaths, DeviceSettings } from '../agent/settings.js';
import type { StatusDocument } from '../agent/status/status-document.js';
import { cloudDate, describeSkew } from '../cloud-access/cloud-time.js';
import {
  type ConnectionPath,
  connectionPath,
  openStream,
  openTls,
  resolveFirstHop,
} from '../cloud-access/connection-path.js';
import type { ProxySettings } from '../cloud-access/proxy.js';
import { explainConnectionError } from '../cloud-access/tls-errors.js';
import {
  type Identity,
  readClientTls,
  readIdentity,
  readPairingState,
  summariseCertificate,
} from '../identity/identity-store.js';
import { exposedToOthers, octalMode } from '../identity/key-permissions.js';
import { DEFAULT_CONFIG } from '../protocol/config-schema.js';
import type { DiagnosticsCheck } from '../protocol/messages.js';
import { parseErrorBody } from '../protocol/refusal.js';
import { AGENT_PATH, SUBPROTOCOL } from '../protocol/version.js';

/**
 * The technician's checks. Each answers one question with `{id, status, detail, hint}`; the hints
 * are the PeakPOS guide's causes and fixes, in a technician's words. They need nothing from the
 * daemon: the store is opened read-only, the network is probed along the link's own path
 * (cloud-access/connection-path.ts: directly, or through the HTTPS proxy the daemon uses) — before
 * enrollment too, when the image names its cloud and fleet CA. When the daemon runs,
 * its status document says how its link is — and the WebSocket probe is not made then, so a
 * diagnostic never pushes the daemon's own link off the cloud.
 */
export type CheckResult = DiagnosticsCheck;
export type CheckStatus = CheckResult['status'];
export type CheckGroup = CheckResult['group'];

export interface DiagnosticsContext {
  paths: AgentPaths;
  settings: Pick<DeviceSettings, 'cloudUrl' | 'renewBeforeDays'> &
    Partial<Pick<DeviceSettings, 'fleetCaFile' | 'cloudUrls'>>;
  /** The HTTPS proxy the daemon uses (device setting, else HTTPS_PROXY / NO_PROXY): the checks take the same path. */
  proxy?: ProxySettings;
  /** The daemon's status when it runs (asked over the local API, or its own in-process), else null. */
  daemon: StatusDocument | null;
  now(): number;
  /** Network probes give up after this long each. */
  timeoutMs?: number;
}

const CLOCK_FAIL_SEC = 300;
const CLOCK_WARN_SEC = 60;
const DISK_FAIL_BYTES = 50 * 1024 * 1024;
const DISK_WARN_BYTES = 200 * 1024 * 1024;

const result = (
  id: string,
  group: CheckGroup,
  status: CheckStatus,
  detail: string,
  hint?: string,
): CheckResult => ({ id, group, status, detail: detail.slice(0, 1000), ...(hint ? { hint } : {}) });

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(
        () => reject(Object.assign(new Error(`${what} timed out after ${ms} ms`), { code: 'ETIMEDOUT' })),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Every check, in the order a technician reads them. Never throws: a check that breaks reports `fail`. */
export async function runChecks(ctx: DiagnosticsContext): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const timeoutMs = ctx.timeoutMs ?? 5000;
  const identity = await readIdentity(ctx.paths.stateDir).catch(() => null);
  results.push(await enrolledCheck(ctx, identity));
  if (identity) {
    results.push(await identityFilesCheck(identity));
    results.push(await certificateCheck(ctx, identity));
  }
  let store: AgentStoreReader | null = null;
  let storeError: string | null = null;
  try {
    store = openStoreReadOnly(ctx.paths.dbFile);
  } catch (err) {
    storeError = (err as Error).message;
  }
  try {
    if (identity)
      results.push(
        ...(await networkChecks(
          ctx,
          // The address the daemon's link uses when it runs, else the one it would start with.
          ctx.daemon?.cloudUrl ?? firstCloudUrl(ctx.settings, identity),
          () => readClientTls(identity),
          true,
          store,
          timeoutMs,
        )),
      );
    else if (ctx.settings.cloudUrl) {
      // Not enrolled yet, but the image names its cloud (and CA): can this device reach it at all?
      // (A terminal that "never heartbeated" is most often one that never could.)
      const caFile = ctx.settings.fleetCaFile ?? '/etc/posagent/fleet-ca.crt';
      results.push(
        ...(await networkChecks(
          ctx,
          ctx.settings.cloudUrl,
          async () => ({ ca: await readFile(caFile, 'utf8') }),
          false,
          store,
          timeoutMs,
        )),
      );
    }
    results.push(daemonCheck(ctx));
    if (identity) results.push(linkCheck(ctx, store));
    results.push(storeCheck(ctx, store, storeError));
    results.push(configCheck(store));
    results.push(queueCheck(ctx, store));
    results.push(await diskCheck(ctx));
    results.push(await localApiCheck(ctx));
  } finally {
    store?.close();
  }
  return results;
}

async function enrolledCheck(ctx: DiagnosticsContext, identity: Identity | null): Promise<CheckResult> {
  if (identity)
    return result(
      'enrolled',
      'identity',
      'pass',
      `terminal ${identity.terminalId} "${identity.name}" at location ${identity.locationId}, cloud ${identity.cloudUrl}`,
    );
  const pairing = await readPairingState(ctx.paths.stateDir).catch(() => null);
  return result(
    'enrolled',
    'identity',
    'fail',
    pairing
      ? `not enrolled yet: waiting to be paired, code ${pairing.code} (valid until ${pairing.expiresAt})`
      : 'this terminal is not enrolled',
    pairing
      ? 'activate the code in the cloud (POST /v1/terminals/activate) or the dashboard'
      : 'get an enrollment code from the dashboard and run: posagent enroll --code CODE (or --qr, --pair, --auto)',
  );
}

async function identityFilesCheck(identity: Identity): Promise<CheckResult> {
  const p = identity.paths;
  const missing = [p.keyFile, p.certFile, p.caFile].filter((f) => !existsSync(f));
  if (missing.length > 0)
    return result(
      'identity_files',
      'identity',
      'fail',
      `missing: ${missing.join(', ')}`,
      'the identity is incomplete and cannot be repaired on site: re-enroll with a replacement code (POST /v1/terminals/{id}/replace), then posagent enroll --force',
    );
  const key = await stat(p.keyFile);
  const dir = await stat(p.keysDir);
  if (exposedToOthers(key.mode) || exposedToOthers(dir.mode))
    return result(
      'identity_files',
      'identity',
      'fail',
      `the private key is readable by others: ${p.keyFile} is ${octalMode(key.mode)} (must be 0600), ${p.keysDir} is ${octalMode(dir.mode)} (must be 0700)`,
      `chmod 600 ${p.keyFile} && chmod 700 ${p.keysDir}; if the key may have been copied, reprovision (posagent reprovision)`,
    );
  return result('identity_files', 'identity', 'pass', 'key (0600), certificate and pinned fleet CA present');
}

async function certificateCheck(ctx: DiagnosticsContext, identity: Identity): Promise<CheckResult> {
  let c: ReturnType<typeof summariseCertificate>;
  try {
    c = summariseCertificate(await readFile(identity.paths.certFile, 'utf8'), ctx.now());
  } catch (err) {
    return result(
      'certificate',
      'identity',
      'fail',
      `the client certificate cannot be read: ${(err as Error).message}`,
      're-enroll with a replacement code',
    );
  }
  const now = ctx.now();
  if (Date.parse(c.notBefore) > now)
    return result(
      'certificate',
      'identity',
      'fail',
      `the certificate is not valid before ${c.notBefore}; the device clock says ${new Date(now).toISOString()}`,
      'the device clock is behind: set the date and time (or enable NTP)',
    );
  if (Date.parse(c.notAfter) <= now)
    return result(
      'certificate',
      'identity',
      'fail',
      `the certificate expired on ${c.notAfter}`,
      'if the device clock is right, the terminal must be re-enrolled: create a replacement code in the dashboard, then posagent enroll --force --code CODE',
    );
  if (c.daysLeft < ctx.settings.renewBeforeDays)
    return result(
      'certificate',
      'identity',
      'warn',
      `valid until ${c.notAfter}: ${c.daysLeft} days left, renewal due`,
      'the daemon renews it by itself when online; to renew now: posagent cert --renew',
    );
  return result('certificate', 'identity', 'pass', `valid until ${c.notAfter} (${c.daysLeft} days left)`);
}

/** What the network checks present to the cloud: the identity's pinned CA and client pair, or (not enrolled) the configured fleet CA alone. */
type TlsFiles = { ca: string; cert?: string; key?: string };

async function networkChecks(
  ctx: DiagnosticsContext,
  cloudUrl: string,
  tlsFiles: () => Promise<TlsFiles>,
  enrolled: boolean,
  store: AgentStoreReader | null,
  timeoutMs: number,
): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const notTried = (id: string, why: string) =>
    result(id, 'network', 'fail', `not tried: ${why}`, 'fix the check above first');
  const rest = (why: string) => [notTried('tls', why), ...(enrolled ? [notTried('websocket', why)] : [])];
  let path: ConnectionPath;
  try {
    path = connectionPath(cloudUrl, ctx.proxy);
  } catch (err) {
    return [
      result(
        'dns',
        'network',
        'fail',
        `the cloud URL "${cloudUrl}" cannot be used: ${(err as Error).message}`,
        'fix cloudUrl (or httpsProxy) in /etc/posagent/agent.json',
      ),
      notTried('tcp', 'no usable cloud URL'),
      ...rest('no usable cloud URL'),
    ];
  }
  const via = path.proxy ? ` (${path.describe()})` : '';
  const cloudName = `${path.host}:${path.port}`;

  // DNS: the device resolves the first hop only — the proxy, when there is one.
  let address: string;
  try {
    const hop = await withTimeout(resolveFirstHop(path), timeoutMs, `looking up ${path.firstHop.host}`);
    address = hop.address;
    const what = path.proxy ? `the HTTPS proxy ${hop.name}` : hop.name;
    out.push(
      result(
        'dns',
        'network',
        'pass',
        hop.lookedUp
          ? `${what} → ${hop.address}${path.proxy ? ` (the proxy resolves ${path.host})` : ''}`
          : `${what} is an IP address; no lookup needed${path.proxy ? ` (the proxy resolves ${path.host})` : ''}`,
      ),
    );
  } catch (err) {
    out.push(
      result(
        'dns',
        'network',
        'fail',
        `${path.proxy ? `the HTTPS proxy ${path.firstHop.host}` : path.firstHop.host} does not resolve: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        path.proxy
          ? 'check the proxy setting (httpsProxy in /etc/posagent/agent.json, or HTTPS_PROXY) and the DNS server'
          : 'check the network cable or Wi-Fi, the DNS server, and the cloud URL (cloudUrl in /etc/posagent/agent.json)',
      ),
    );
    return [...out, notTried('tcp', 'DNS failed'), ...rest('DNS failed')];
  }

  // TCP: to the cloud, or a CONNECT tunnel through the proxy — as the link connects.
  let stream: Duplex;
  try {
    const started = Date.now();
    stream = await withTimeout(
      openStream(path, address, timeoutMs),
      timeoutMs,
      `connecting to ${cloudName}${via}`,
    );
    out.push(
      result(
        'tcp',
        'network',
        'pass',
        path.proxy
          ? `the HTTPS proxy ${path.firstHop.host}:${path.firstHop.port} opened a tunnel to ${cloudName} in ${Date.now() - started} ms`
          : `connected to ${cloudName} in ${Date.now() - started} ms`,
      ),
    );
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    out.push(
      result(
        'tcp',
        'network',
        'fail',
        path.proxy
          ? (err as Error).message
          : `cannot connect to ${cloudName}: ${code || (err as Error).message}`,
        code === 'PROXY_REFUSED'
          ? `the proxy refused the tunnel: it must allow CONNECT to ${cloudName}; ask the site IT`
          : code === 'PROXY_UNREACHABLE'
            ? 'the proxy does not answer: check the proxy setting (httpsProxy, or HTTPS_PROXY) and the network'
            : code === 'ECONNREFUSED'
              ? 'nothing answers on that port: the cloud is down or the URL is wrong; check the status page'
              : 'a firewall may block outbound port 443, or the network is down; check with the site IT',
      ),
    );
    return [...out, ...rest('no TCP connection'), await clockCheck(ctx, cloudUrl, store)];
  }

  // TLS, with the pinned CA (and the client certificate once enrolled), over that connection.
  let tls: TlsFiles;
  try {
    tls = await tlsFiles();
  } catch (err) {
    stream.destroy();
    return [
      ...out,
      result(
        'tls',
        'network',
        'fail',
        `cannot read ${enrolled ? 'the identity' : 'the fleet CA'}: ${(err as Error).message}`,
        enrolled
          ? 'see identity_files'
          : 'set fleetCaFile in /etc/posagent/agent.json to the fleet CA the image ships with',
      ),
      ...(enrolled ? [notTried('websocket', 'no identity')] : []),
      await clockCheck(ctx, cloudUrl, store),
    ];
  }
  try {
    const socket = await withTimeout(openTls(path, stream, tls), timeoutMs, 'the TLS handshake');
    const valid = socket.getPeerCertificate().valid_to;
    socket.destroy();
    out.push(
      result(
        'tls',
        'network',
        'pass',
        `the cloud's certificate chains to the ${enrolled ? 'pinned ' : ''}fleet CA (valid until ${new Date(valid).toISOString()})${via}`,
      ),
    );
  } catch (err) {
    stream.destroy();
    const e = explainConnectionError(err, path.cloud.origin);
    out.push(
      result(
        'tls',
        'network',
        'fail',
        e.message,
        e.code === 'cloud_untrusted'
          ? enrolled
            ? 'the cloud does not match the fleet CA pinned at enrollment: check the cloud URL; if the fleet moved to a new CA, re-enroll'
            : 'the cloud does not match the fleet CA configured (fleetCaFile): check the cloud URL and the CA file'
          : e.code === 'clock_wrong' || e.code === 'cloud_cert_expired'
            ? 'check the device clock (see clock)'
            : 'a proxy or firewall may intercept TLS; it must pass the connection through unchanged',
      ),
    );
    return [
      ...out,
      ...(enrolled ? [notTried('websocket', 'no TLS session')] : []),
      await clockCheck(ctx, cloudUrl, store),
    ];
  }

  // WebSocket upgrade (enrolled: it needs the client certificate) — not while the daemon is
  // online: a second link would push its own link off.
  if (enrolled) {
    if (ctx.daemon?.link.state === 'online') {
      out.push(result('websocket', 'network', 'pass', `the daemon's link to ${AGENT_PATH} is online`));
    } else {
      out.push(await websocketProbe(path, tls, timeoutMs));
    }
  }
  out.push(await clockCheck(ctx, cloudUrl, store));
  return out;
}

async function websocketProbe(path: ConnectionPath, tls: TlsFiles, timeoutMs: number): Promise<CheckResult> {
  const { default: WebSocket } = await import('ws');
  const target = new URL(AGENT_PATH, path.cloud.href.replace(/^http/, 'ws'));
  const agent = path.agent();
  return new Promise<CheckResult>((resolve) => {
    const ws = new WebSocket(target, SUBPROTOCOL, {
      ...tls,
      handshakeTimeout: timeoutMs,
      ...(agent ? { agent } : {}),
    });
    ws.once('open', () => {
      ws.close(1000, 'diagnostics probe');
      resolve(
        result(
          'websocket',
          'network',
          'pass',
          `upgraded to ${SUBPROTOCOL} at ${AGENT_PATH}${path.proxy ? ` (${path.describe()})` : ''}`,
        ),
      );
    });
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        // Not our cloud's error body: the status line says what there is.
        const e = parseErrorBody(Buffer.concat(chunks));
        const why = e ? `${e.code}: ${e.message}` : `HTTP ${res.statusCode}`;
        resolve(
          result(
            'websocket',
            'network',
            'fail',
            `the cloud refused the link (${why})`,
            /deactivated/.test(why)
              ? 'the terminal was deactivated in the cloud: enroll it again with a new code'
              : /superseded|unknown|certificate/.test(why)
                ? 'the cloud no longer accepts this certificate: re-enroll with a replacement code'
                : 'escalate with the support bundle (posagent diagnostics --bundle FILE)',
          ),
        );
      });
    });
    ws.once('error', (err) =>
      resolve(
        result(
          'websocket',
          'network',
          'fail',
          `WebSocket upgrade failed: ${err.message}`,
          'a proxy may block WebSocket upgrades',
        ),
      ),
    );
  });
}

async function clockCheck(
  ctx: DiagnosticsContext,
  cloudUrl: string,
  store: AgentStoreReader | null,
): Promise<CheckResult> {
  const now = ctx.now();
  const cloud = await cloudDate(cloudUrl, ctx.proxy, ctx.timeoutMs ?? 5000).catch(() => null);
  if (!cloud) {
    const trusted = store?.linkStatus().trustedTime ?? null;
    if (trusted && Date.parse(trusted) - now > CLOCK_FAIL_SEC * 1000)
      return result(
        'clock',
        'device',
        'fail',
        `the device clock (${new Date(now).toISOString()}) is behind the last time the cloud confirmed (${trusted})`,
        'set the date and time (or enable NTP); TLS fails until the clock is right',
      );
    return result(
      'clock',
      'device',
      'warn',
      "could not read the cloud's time to compare",
      'see the network checks',
    );
  }
  const skewSec = Math.round((now - cloud.getTime()) / 1000);
  const detail = `device ${new Date(now).toISOString()}, cloud ${cloud.toISOString()} (${describeSkew(skewSec)})`;
  if (Math.abs(skewSec) > CLOCK_FAIL_SEC)
    return result(
      'clock',
      'device',
      'fail',
      detail,
      'set the date and time (or enable NTP): certificates and TLS fail with a clock this far off',
    );
  if (Math.abs(skewSec) > CLOCK_WARN_SEC) return result('clock', 'device', 'warn', detail, 'enable NTP');
  return result('clock', 'device', 'pass', detail);
}

function daemonCheck(ctx: DiagnosticsContext): CheckResult {
  return ctx.daemon
    ? result('daemon', 'agent', 'pass', `running, software ${ctx.daemon.softwareVersion}`)
    : result(
        'daemon',
        'agent',
        'fail',
        'the posagent daemon is not running',
        'systemctl start posagent; then journalctl -u posagent -n 50 if it stops again',
      );
}

function linkCheck(ctx: DiagnosticsContext, store: AgentStoreReader | null): CheckResult {
  const link = ctx.daemon?.link ?? null;
  const last = link?.lastHeartbeatAt ?? store?.linkStatus().lastHeartbeatAt ?? null;
  const age = last ? Math.round((ctx.now() - Date.parse(last)) / 1000) : null;
  const lastText = last ? `last heartbeat ${age} s ago (${last})` : 'never sent a heartbeat';
  if (!link)
    return result(
      'link',
      'agent',
      'fail',
      `no link: the daemon is not running; ${lastText}`,
      'start the daemon',
    );
  if (link.state === 'online') {
    const interval =
      store?.appliedConfig()?.config.agent.heartbeatIntervalSec ?? DEFAULT_CONFIG.agent.heartbeatIntervalSec;
    if (age !== null && age > interval * 3)
      return result(
        'link',
        'agent',
        'warn',
        `online, but ${lastText} (interval ${interval} s)`,
        'the link may be half-open; posagent queue flush forces a reconnect',
      );
    return result('link', 'agent', 'pass', `online since ${link.since}; ${lastText}`);
  }
  return result(
    'link',
    'agent',
    'fail',
    `${link.state}${link.reason ? `: ${link.reason}` : ''}; ${lastText}`,
    last
      ? 'it was online before: see the network checks above for what changed'
      : 'it never connected: check the network checks and the certificate',
  );
}

function storeCheck(
  ctx: DiagnosticsContext,
  store: AgentStoreReader | null,
  error: string | null,
): CheckResult {
  if (error)
    return result(
      'store',
      'device',
      'fail',
      `the store ${ctx.paths.dbFile} cannot be opened: ${error}`,
      'do not delete it (it may hold unsent sales): export a support bundle and escalate',
    );
  if (!store)
    return result('store', 'device', 'warn', 'no store yet: the daemon has never run', 'start the daemon');
  try {
    const verdict = store.integrity();
    if (verdict === 'ok') return result('store', 'device', 'pass', `${ctx.paths.dbFile}: integrity ok`);
    return result(
      'store',
      'device',
      'fail',
      `the store is damaged: ${verdict}`,
      'do not delete it: export a support bundle and escalate',
    );
  } catch (err) {
    return result(
      'store',
      'device',
      'fail',
      `the store cannot be read: ${(err as Error).message}`,
      'do not delete it: export a support bundle and escalate',
    );
  }
}

function configCheck(store: AgentStoreReader | null): CheckResult {
  if (!store) return result('config', 'agent', 'warn', 'no store to read the configuration from');
  try {
    const applied = store.appliedConfig();
    const rejected = store.lastRejection();
    if (rejected && (applied === null || rejected.version > applied.version))
      return result(
        'config',
        'agent',
        'warn',
        `version ${rejected.version} was refused (${rejected.errors.map((e) => `${e.path || '/'} ${e.message}`).join('; ')}); running ${applied ? `version ${applied.version}` : 'the defaults'}`,
        'the pushed configuration is invalid: fix it in the dashboard; the terminal keeps its last good one meanwhile',
      );
    return result(
      'config',
      'agent',
      'pass',
      applied
        ? `version ${applied.version} applied at ${applied.appliedAt}`
        : 'nothing pushed yet: the defaults apply',
    );
  } catch (err) {
    return result('config', 'agent', 'warn', `cannot read the configuration: ${(err as Error).message}`);
  }
}

function queueCheck(ctx: DiagnosticsContext, store: AgentStoreReader | null): CheckResult {
  if (!store?.transactions) return result('queue', 'agent', 'pass', 'no transactions stored');
  try {
    const q = store.transactions.summary();
    const offline = (store.appliedConfig()?.config ?? DEFAULT_CONFIG).offlineMode;
    const ageH = q.oldestAt ? (ctx.now() - Date.parse(q.oldestAt)) / 3_600_000 : 0;
    const waiting = `${q.stored} waiting for the cloud${q.oldestAt ? `, oldest stored ${q.oldestAt} (${ageH.toFixed(1)} h ago)` : ''}`;
    if (!offline.enabled) {
      const detail = `${waiting}; offline mode is off (sales need the cloud)`;
      if (ageH > offline.maxAgeHours / 2)
        return result(
          'queue',
          'agent',
          'warn',
          detail,
          'transactions are waiting long: fix the connection before they expire',
        );
      return result('queue', 'agent', 'pass', detail);
    }
    const detail = `${waiting}; offline limits: ${offline.maxQueue} transactions, ${offline.maxAgeHours} h`;
    if (q.stored >= offline.maxQueue)
      return result(
        'queue',
        'agent',
        'fail',
        `full: ${detail}`,
        'new offline sales are refused until the link is back: fix the connection (see the network checks)',
      );
    if (q.stored >= offline.maxQueue * 0.8 || ageH > offline.maxAgeHours / 2)
      return result(
        'queue',
        'agent',
        'warn',
        detail,
        'the link must come back soon or offline sales will be refused or expire',
      );
    return result('queue', 'agent', 'pass', detail);
  } catch (err) {
    return result('queue', 'agent', 'warn', `cannot read the queue: ${(err as Error).message}`);
  }
}

async function diskCheck(ctx: DiagnosticsContext): Promise<CheckResult> {
  try {
    const fs = await statfs(existsSync(ctx.paths.stateDir) ? ctx.paths.stateDir : '/');
    const free = fs.bavail * fs.bsize;
    const detail = `${Math.floor(free / 1024 / 1024)} MB free of ${Math.floor((fs.blocks * fs.bsize) / 1024 / 1024)} MB`;
    if (free < DISK_FAIL_BYTES)
      return result(
        'disk',
        'device',
        'fail',
        detail,
        'the disk is almost full: sales will be refused (storage_full); free space or escalate',
      );
    if (free < DISK_WARN_BYTES) return result('disk', 'device', 'warn', detail, 'free some space');
    return result('disk', 'device', 'pass', detail);
  } catch (err) {
    return result('disk', 'device', 'warn', `cannot read free space: ${(err as Error).message}`);
  }
}

async function localApiCheck(ctx: DiagnosticsContext): Promise<CheckResult> {
  const sock = ctx.paths.socketPath;
  let s: Awaited<ReturnType<typeof stat>>;
  try {
    s = await stat(sock);
  } catch {
    return result(
      'local_api',
      'agent',
      ctx.daemon ? 'fail' : 'warn',
      `no socket at ${sock}${ctx.daemon ? '' : ' (the daemon is not running)'}`,
      'the POS app cannot reach the agent until the daemon runs',
    );
  }
  if (!s.isSocket())
    return result(
      'local_api',
      'agent',
      'fail',
      `${sock} is not a socket`,
      'remove it and restart the daemon',
    );
  if ((s.mode & 0o777) !== 0o660)
    return result(
      'local_api',
      'agent',
      'fail',
      `${sock} is ${octalMode(s.mode)}; it must be 0660 (owner and group posagent)`,
      'restart the daemon; the POS app user must be in group posagent',
    );
  return result(
    'local_api',
    'agent',
    ctx.daemon ? 'pass' : 'warn',
    ctx.daemon ? `listening on ${sock} (0660)` : `${sock} exists but nothing answers (stale)`,
    ctx.daemon ? undefined : 'start the daemon',
  );
}

import { readFile } from 'node:fs/promises';
import { type DeviceSettings, resolvePaths } from '../agent/settings.js';
import { proxySettings } from '../cloud-access/proxy.js';
import { NO_SERIAL_HINT, NO_SERIAL_MESSAGE, presentDevice } from '../enroll/device-presentation.js';
import {
  EnrollmentError,
  enrollByPairing,
  enrollWithCode,
  enrollWithQr,
  enrollWithSerial,
} from '../enroll/enrollment.js';
import { FactoryIdentityError } from '../identity/factory-identity.js';
import { type Identity, readIdentity, summariseCertificate } from '../identity/identity-store.js';
import { loadDeviceSettings } from './device-settings.js';
import { CommandError, ExitCode, type Output } from './output.js';

export interface EnrollOptions {
  stateDir?: string;
  runtimeDir?: string;
  settings?: string;
  cloud?: string;
  caFile?: string;
  code?: string;
  qr?: string;
  qrImage?: string;
  pair?: boolean;
  auto?: boolean;
  serial?: string;
  factoryKey?: string;
  factoryCert?: string;
  force?: boolean;
}

const usage = (message: string) => new CommandError('usage', message, ExitCode.usage);

/** `posagent enroll`: one of --code, --qr, --qr-image, --pair, --auto. */
export async function enrollCommand(
  opts: EnrollOptions,
  out: Output,
  softwareVersion: string,
): Promise<number> {
  const paths = resolvePaths(opts, process.env);
  const chosen = (['code', 'qr', 'qrImage', 'pair', 'auto'] as const).filter(
    (k) => opts[k] !== undefined && opts[k] !== false,
  );
  if (chosen.length === 0)
    throw usage('choose how to enroll: --code CODE, --qr PAYLOAD, --qr-image FILE.png, --pair or --auto');
  if (chosen.length > 1) throw usage(`choose one way to enroll, not ${chosen.map(flagName).join(' and ')}`);
  if (opts.force) await refuseBesideDaemon(paths.stateDir);
  const { settings } = await loadDeviceSettings(opts.settings, {});
  if (opts.factoryKey) settings.factoryKeyFile = opts.factoryKey;
  if (opts.factoryCert) settings.factoryCertFile = opts.factoryCert;
  let device: Awaited<ReturnType<typeof presentDevice>>;
  try {
    device = await presentDevice(settings, opts.serial);
  } catch (err) {
    if (err instanceof FactoryIdentityError)
      throw new CommandError('factory_identity_unreadable', err.message);
    throw err;
  }
  const base = {
    stateDir: paths.stateDir,
    force: opts.force === true,
    softwareVersion,
    ...(device.serialNumber ? { serialNumber: device.serialNumber } : {}),
    ...(device.model ? { model: device.model } : {}),
    proxy: proxySettings(settings, process.env),
    onProgress: (step: string) => {
      if (!out.json) out.progress(`… ${step}`);
    },
  };
  const cloudAndCa = async () => {
    const cloudUrl = opts.cloud ?? settings.cloudUrl;
    if (!cloudUrl) throw usage(`--cloud URL is required with ${flagName(chosen[0]!)}`);
    const caFile = opts.caFile ?? settings.fleetCaFile;
    return { cloudUrl, caPem: await readCa(caFile, opts.caFile !== undefined) };
  };
  try {
    let identity: Identity;
    if (opts.code !== undefined) {
      identity = await enrollWithCode({ ...base, ...(await cloudAndCa()), code: opts.code });
    } else if (opts.qr !== undefined || opts.qrImage !== undefined) {
      const payload = opts.qr ?? (await decodeQrImage(opts.qrImage!));
      identity = await enrollWithQr({ ...base, payload });
    } else if (opts.auto) {
      const serialNumber = device.serialNumber;
      if (!serialNumber)
        throw new CommandError('no_serial', NO_SERIAL_MESSAGE, ExitCode.failed, NO_SERIAL_HINT);
      base.onProgress(
        device.factory
          ? `presenting serial number ${serialNumber} with the factory identity`
          : `presenting serial number ${serialNumber} (no factory identity at ${settings.factoryCertFile})`,
      );
      identity = await enrollWithSerial({
        ...base,
        ...(await cloudAndCa()),
        serialNumber,
        factory: device.factory,
      });
    } else {
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        identity = await enrollByPairing({
          ...base,
          ...(await cloudAndCa()),
          signal: ac.signal,
          onCode: (code, expiresAt) =>
            out.progress(
              out.json
                ? JSON.stringify({ pairing: { code, expiresAt } })
                : `\nActivation code:  ${code}\n(valid until ${expiresAt}) — activate it in the cloud for this terminal's location.\n`,
            ),
          onWaiting: (expiresAt) => {
            if (!out.json && process.stderr.isTTY) {
              const left = Math.max(0, Math.round((Date.parse(expiresAt) - Date.now()) / 1000));
              process.stderr.write(`\r… waiting for activation (${left} s left)   `);
            }
          },
        });
      } catch (err) {
        if (ac.signal.aborted)
          throw new CommandError('interrupted', 'pairing interrupted; nothing was installed');
        throw err;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    }
    const cert = summariseCertificate(await readFile(identity.paths.certFile, 'utf8'), Date.now());
    const doc = {
      terminalId: identity.terminalId,
      locationId: identity.locationId,
      name: identity.name,
      certificate: { notAfter: cert.notAfter },
      cloud: identity.cloudUrl,
    };
    out.result(doc, () =>
      [
        `Enrolled as ${doc.name} (${doc.terminalId}) at location ${doc.locationId}.`,
        `Certificate valid until ${doc.certificate.notAfter}. Cloud: ${doc.cloud}`,
        'Start the daemon (systemctl start posagent, or posagent run) to bring the terminal online.',
      ].join('\n'),
    );
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof EnrollmentError) {
      if (err.code === 'already_enrolled') throw new CommandError(err.code, err.message, ExitCode.refused);
      throw enrollmentFailed(err);
    }
    throw err;
  }
}

/**
 * `--force` replaces the identity under a running daemon's feet: it would stay on the old one
 * (and diagnostics would read the new one). Refused while the daemon holds the state dir.
 */
async function refuseBesideDaemon(stateDir: string): Promise<void> {
  if (!(await readIdentity(stateDir))) return; // not enrolled: a waiting daemon picks the new identity up
  const { daemonHoldsLock } = await import('../agent/daemon-lock.js');
  const { held, pid } = daemonHoldsLock(stateDir);
  if (held)
    throw new CommandError(
      'daemon_running',
      `the daemon${pid ? ` (pid ${pid})` : ''} is running on this terminal's identity; enroll --force would leave it on the old one`,
      ExitCode.refused,
      'stop it first (systemctl stop posagent), then enroll --force; or re-key in place with posagent reprovision',
    );
}

function flagName(k: string): string {
  return k === 'qrImage' ? '--qr-image' : `--${k}`;
}

async function readCa(file: string, explicit: boolean): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT')
      throw usage(`--ca-file PEM is required (the fleet CA to trust the cloud with; ${file} does not exist)`);
    throw new CommandError(
      'ca_file_unreadable',
      `cannot read the CA file ${file}: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
}

/** Decodes the QR code in a PNG (a photo or a screenshot of the cloud's code). */
async function decodeQrImage(file: string): Promise<string> {
  const [pngjs, jsqr] = await Promise.all([import('pngjs'), import('jsqr')]);
  // Both are CommonJS: under Node's ESM interop and esbuild's bundle the exports sit on `default`
  // (jsqr's function even on default.default), so take whichever level holds them.
  const PNG = pngjs.PNG ?? (pngjs as unknown as { default: typeof pngjs }).default.PNG;
  const jsQR = (
    typeof jsqr.default === 'function'
      ? jsqr.default
      : (jsqr.default as unknown as { default: unknown }).default
  ) as (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;
  let png: { data: Buffer; width: number; height: number };
  try {
    png = PNG.sync.read(await readFile(file));
  } catch (err) {
    throw new CommandError(
      'qr_image_unreadable',
      `cannot read ${file} as a PNG image: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const found = jsQR(
    new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length),
    png.width,
    png.height,
  );
  if (!found)
    throw new CommandError(
      'qr_not_found',
      `no QR code found in ${file}`,
      ExitCode.failed,
      'use a sharper, uncropped image, or --qr PAYLOAD',
    );
  return found.data;
}

/**
 * Enrolls with a typed code, the cloud URL and fleet CA taken from the device settings — what the
 * menu does when a technician types the code on the terminal (the same path as `--code`).
 */
export async function enrollWithSettingsCode(
  stateDir: string,
  settings: DeviceSettings,
  code: string,
  softwareVersion: string,
  onProgress: (step: string) => void = () => {},
): Promise<Identity> {
  if (!settings.cloudUrl)
    throw usage(
      'no cloud URL is configured: set cloudUrl in /etc/posagent/agent.json, or run posagent enroll --cloud URL --code CODE',
    );
  const caPem = await readCa(settings.fleetCaFile, false);
  try {
    return await enrollWithCode({
      stateDir,
      force: false,
      softwareVersion,
      proxy: proxySettings(settings, process.env),
      onProgress,
      cloudUrl: settings.cloudUrl,
      caPem,
      code,
    });
  } catch (err) {
    if (err instanceof EnrollmentError) throw enrollmentFailed(err);
    throw err;
  }
}

export function hintFor(code: string): string | undefined {
  switch (code) {
    case 'invalid_code':
      return 'codes look like ABCD-EFGH; check the code shown in the cloud for this terminal';
    case 'code_expired':
    case 'code_used':
      return 'generate a new enrollment code for this terminal in the cloud';
    case 'rate_limited':
      return 'wait for the time given, then try again (with --code: check the code first)';
    case 'cloud_untrusted':
      return 'check --ca-file is the fleet CA of this cloud';
    case 'ca_fingerprint_mismatch':
      return 'the QR code was made for another cloud, or something between this device and the cloud is impersonating it; do not enroll, escalate';
    case 'auto_enrollment_refused':
      return "check that this serial is pre-registered with this device's factory public key or manufacturer CA, and that the factory identity files (factoryKeyFile, factoryCertFile) are the device's; or enroll with a code";
    case 'unreachable':
      return 'check the network (link lights or Wi-Fi) and the cloud URL';
    case 'proxy_refused':
    case 'proxy_unreachable':
      return 'check the proxy setting (httpsProxy in the device settings, or HTTPS_PROXY) and that it allows the cloud host';
    case 'clock_wrong':
    case 'cloud_cert_expired':
      return 'check the device date and time';
    default:
      return undefined;
  }
}

/** An enrollment the cloud or the device refused, as the CLI reports it: exit 1 with its hint. */
function enrollmentFailed(err: EnrollmentError): CommandError {
  return new CommandError(err.code, `enrollment failed: ${err.message}`, ExitCode.failed, hintFor(err.code));
}

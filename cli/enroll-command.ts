import { readFile } from 'node:fs/promises';
import { resolvePaths } from '../agent/settings.js';
import { EnrollmentError, enrollWithCode } from '../enroll/code-enrollment.js';
import { summariseCertificate } from '../enroll/identity-store.js';
import { CommandError, ExitCode, type Output } from './output.js';

export async function enrollCommand(
  opts: {
    stateDir?: string;
    runtimeDir?: string;
    cloud?: string;
    caFile?: string;
    code?: string;
    serial?: string;
    force?: boolean;
  },
  out: Output,
  softwareVersion: string,
): Promise<number> {
  const paths = resolvePaths(opts, process.env);
  if (!opts.code) throw new CommandError('usage', 'choose how to enroll: --code CODE', ExitCode.usage);
  if (!opts.cloud) throw new CommandError('usage', '--cloud URL is required with --code', ExitCode.usage);
  if (!opts.caFile)
    throw new CommandError(
      'usage',
      '--ca-file PEM is required with --code (the fleet CA to trust the cloud with)',
      ExitCode.usage,
    );
  let caPem: string;
  try {
    caPem = await readFile(opts.caFile, 'utf8');
  } catch (err) {
    throw new CommandError(
      'ca_file_unreadable',
      `cannot read the CA file ${opts.caFile}: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
  try {
    const identity = await enrollWithCode({
      stateDir: paths.stateDir,
      cloudUrl: opts.cloud,
      caPem,
      code: opts.code,
      force: opts.force === true,
      softwareVersion,
      ...(opts.serial ? { serialNumber: opts.serial } : {}),
      onProgress: (step) => {
        if (!out.json) out.progress(`… ${step}`);
      },
    });
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
      throw new CommandError(
        err.code,
        `enrollment failed: ${err.message}`,
        ExitCode.failed,
        hintFor(err.code),
      );
    }
    throw err;
  }
}

function hintFor(code: string): string | undefined {
  switch (code) {
    case 'invalid_code':
      return 'codes look like ABCD-EFGH; check the code shown in the cloud for this terminal';
    case 'code_expired':
    case 'code_used':
      return 'generate a new enrollment code for this terminal in the cloud';
    case 'rate_limited':
      return 'wait, then try again with the right code';
    case 'cloud_untrusted':
      return 'check --ca-file is the fleet CA of this cloud';
    case 'unreachable':
      return 'check the network (link lights or Wi-Fi) and the cloud URL';
    case 'clock_wrong':
    case 'cloud_cert_expired':
      return 'check the device date and time';
    default:
      return undefined;
  }
}

import { Command, CommanderError, Option } from 'commander';
import type { DiagnosticsOptions } from './diagnostics-command.js';
import type { EnrollOptions } from './enroll-command.js';
import { CommandError, createOutput, ExitCode, type Output } from './output.js';
import type { RunOptions } from './run-command.js';
import { readSoftwareVersion } from './software-version.js';

/**
 * The `posagent` commands — thin front-ends: parse, call, print. Command modules are imported
 * lazily so that no command loads what only enrollment or the daemon need.
 */
interface CommonOptions {
  json?: boolean;
  stateDir?: string;
  runtimeDir?: string;
}

function common(cmd: Command): Command {
  return cmd
    .option('--json', 'print one JSON document on stdout and nothing else there')
    .option(
      '--state-dir <dir>',
      'state dir (default: $POSAGENT_STATE_DIR, $STATE_DIRECTORY, /var/lib/posagent)',
    )
    .option(
      '--runtime-dir <dir>',
      'runtime dir holding api.sock (default: $POSAGENT_RUNTIME_DIR, $RUNTIME_DIRECTORY, /run/posagent)',
    );
}

async function runCommand(
  opts: CommonOptions,
  body: (out: Output) => Promise<number | undefined>,
): Promise<void> {
  const out = createOutput(opts.json === true);
  try {
    process.exitCode = (await body(out)) ?? ExitCode.ok;
  } catch (err) {
    const e =
      err instanceof CommandError ? err : new CommandError('failed', (err as Error).message ?? String(err));
    out.error(e);
    process.exitCode = e.exitCode;
  }
}

const version = readSoftwareVersion();
const program = new Command('posagent')
  .description('posagent — the agent of a payment terminal and its link to the fleet cloud')
  .version(version, '-V, --version')
  .exitOverride()
  .showHelpAfterError('(run with --help for usage)');

common(
  program
    .command('enroll')
    .description(
      'enroll this terminal with the fleet cloud (makes the key pair here; the private key never leaves the device)',
    )
    .option('--cloud <url>', 'the cloud base URL, https://… (default: cloudUrl in the device settings)')
    .option(
      '--ca-file <pem>',
      'the fleet CA to trust the cloud with (default: fleetCaFile in the device settings)',
    )
    .option('--code <code>', 'enroll with the enrollment code shown in the cloud (e.g. ABCD-EFGH)')
    .option(
      '--qr <payload>',
      'enroll with a scanned QR payload (posagent://enroll?…); no --cloud or --ca-file needed',
    )
    .option('--qr-image <png>', 'enroll with the QR code in a PNG image')
    .option('--pair', 'show an activation code and wait until it is activated in the cloud')
    .option(
      '--auto',
      "zero-touch: enroll by this device's serial, pre-registered in the cloud, proven with its factory identity",
    )
    .option(
      '--serial <serial>',
      'serial number to present (default: serialNumber in the device settings, the factory certificate, the hardware)',
    )
    .option('--factory-key <pem>', 'factory identity key (default: factoryKeyFile in the device settings)')
    .option(
      '--factory-cert <pem>',
      'factory identity certificate (default: factoryCertFile in the device settings)',
    )
    .option('--settings <file>', 'device settings file (JSON)', '/etc/posagent/agent.json')
    .option('--force', 'replace an existing identity'),
).action(async (opts: EnrollOptions & { json?: boolean }) =>
  runCommand(opts, async (out) => (await import('./enroll-command.js')).enrollCommand(opts, out, version)),
);

common(
  program
    .command('run')
    .description('run the daemon in the foreground (systemd runs this)')
    .option('--settings <file>', 'device settings file (JSON)', '/etc/posagent/agent.json')
    .option('--cloud-url <url>', 'override the cloud URL recorded at enrollment')
    .option('--reboot-command <cmd>', 'shell command that reboots the device (default: systemctl reboot)')
    .option('--boot-id-file <file>', 'where the boot id is read (default: /proc/sys/kernel/random/boot_id)')
    .option('--install-dir <dir>', 'where releases and the current link live (default: /opt/posagent)')
    .addOption(
      new Option('--log-level <level>', 'log level').choices([
        'trace',
        'debug',
        'info',
        'warn',
        'error',
        'fatal',
      ]),
    ),
).action(async (opts: CommonOptions & RunOptions) =>
  runCommand(opts, async (out) => (await import('./run-command.js')).runCommand(opts, out, version)),
);

common(
  program
    .command('status')
    .description('enrollment, daemon, cloud link, certificate, config and queue at a glance'),
).action(async (opts: CommonOptions) =>
  runCommand(opts, async (out) => (await import('./status-command.js')).statusCommand(opts, out, version)),
);

common(
  program
    .command('config')
    .description('the applied configuration {version, config}; why the last push was refused, if it was'),
).action(async (opts: CommonOptions) =>
  runCommand(opts, async (out) => (await import('./config-command.js')).configCommand(opts, out)),
);

common(
  program
    .command('queue')
    .description(
      'the transaction queue: list (default), show ID, flush (forward now, skipping the backoff wait)',
    )
    .argument('[action]', 'list | show | flush', 'list')
    .argument('[id]', 'transaction id for show')
    .option(
      '--state <state>',
      'list only this state (stored, sending, received, authorised, declined, failed, expired)',
    )
    .option('--limit <n>', 'list at most n, newest first', '50'),
).action(
  async (action: string, id: string | undefined, opts: CommonOptions & { state?: string; limit: string }) =>
    runCommand(opts, async (out) => (await import('./queue-command.js')).queueCommand(action, id, opts, out)),
);

common(
  program
    .command('cert')
    .description(
      'the client certificate {subject, serialNumber, notBefore, notAfter, daysLeft, fingerprint}; --renew renews it now',
    )
    .option('--renew', 'renew now with a new key (through the daemon when it runs, directly otherwise)')
    .option('--settings <file>', 'device settings file (JSON)', '/etc/posagent/agent.json'),
).action(async (opts: CommonOptions & { renew?: boolean; settings?: string }) =>
  runCommand(opts, async (out) => (await import('./lifecycle-command.js')).certCommand(opts, out)),
);

common(
  program
    .command('reprovision')
    .description('new key and certificate for this terminal: same terminal id, config and queue')
    .option('--settings <file>', 'device settings file (JSON)', '/etc/posagent/agent.json'),
).action(async (opts: CommonOptions & { settings?: string }) =>
  runCommand(opts, async (out) => (await import('./lifecycle-command.js')).reprovisionCommand(opts, out)),
);

common(
  program
    .command('decommission')
    .description('wipe the identity and the queue (tells the cloud); refuses while transactions are unsent')
    .option('--force', 'decommission even with unsent transactions (they are lost)')
    .option('--settings <file>', 'device settings file (JSON)', '/etc/posagent/agent.json'),
).action(async (opts: CommonOptions & { force?: boolean; settings?: string }) =>
  runCommand(opts, async (out) => (await import('./lifecycle-command.js')).decommissionCommand(opts, out)),
);

common(
  program
    .command('diagnostics')
    .description(
      'check identity, certificate, clock, DNS, TCP, TLS, WebSocket, daemon, link, config, queue, store, disk and the local API; exit 1 if any fails (works with the daemon down)',
    )
    .option(
      '--bundle <file>',
      'also write a support bundle (.tar.gz) for escalation: no keys, tokens or card data',
    )
    .option('--timeout-ms <ms>', 'give up on each network probe after this long', '5000')
    .option('--settings <file>', 'device settings file (JSON)', '/etc/posagent/agent.json'),
).action(async (opts: CommonOptions & DiagnosticsOptions) =>
  runCommand(opts, async (out) =>
    (await import('./diagnostics-command.js')).diagnosticsCommand(opts, out, version),
  ),
);

common(
  program
    .command('menu')
    .description('the interactive diagnostics menu for the terminal screen and keyboard (or SSH)')
    .option('--settings <file>', 'device settings file (JSON)', '/etc/posagent/agent.json'),
).action(async (opts: CommonOptions & { settings?: string }) =>
  runCommand(opts, async (out) => (await import('./menu-command.js')).menuCommand(opts, out, version)),
);

try {
  await program.parseAsync();
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; anything commander rejects is a usage error.
    process.exitCode = err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  } else throw err;
}

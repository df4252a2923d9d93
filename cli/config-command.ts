import { openStoreReadOnly } from '../agent/agent-store.js';
import { type ConfigDocument, configDocument } from '../agent/config/config-document.js';
import { askDaemon } from '../agent/local-api/local-api-client.js';
import { resolvePaths } from '../agent/settings.js';
import { DEFAULT_CONFIG } from '../protocol/config-schema.js';
import { requireEnrolled } from './enrolled.js';
import { ExitCode, type Output } from './output.js';

/** `posagent config`: from the daemon when it runs, else from the store (read-only). */
export async function configCommand(
  opts: { stateDir?: string; runtimeDir?: string },
  out: Output,
): Promise<number> {
  const paths = resolvePaths(opts, process.env);
  // Not enrolled: there is no applied configuration to show (exit 3, daemon up or down).
  await requireEnrolled(paths);
  const res = await askDaemon<ConfigDocument>(paths.socketPath, 'GET', '/v1/config');
  let doc: ConfigDocument | undefined = res?.status === 200 ? res.body : undefined;
  if (!doc) {
    const reader = openStoreReadOnly(paths.dbFile);
    const applied = reader?.appliedConfig() ?? null;
    const rejected = reader?.lastRejection() ?? null;
    reader?.close();
    doc = configDocument(applied ?? { version: null, config: DEFAULT_CONFIG, appliedAt: null }, rejected);
  }
  const d = doc;
  out.result(d, () =>
    [
      d.version === null
        ? 'No configuration pushed yet: built-in defaults apply.'
        : `Config version ${d.version}, applied ${d.appliedAt}.`,
      ...(d.lastRejected
        ? [
            `Version ${d.lastRejected.version} was refused: ${d.lastRejected.errors.map((e) => `${e.path || '/'} ${e.message}`).join('; ')}`,
          ]
        : []),
      JSON.stringify(d.config, null, 2),
    ].join('\n'),
  );
  return ExitCode.ok;
}

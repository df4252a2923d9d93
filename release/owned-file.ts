import { randomUUID } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncDir } from '../files/atomic-file.js';

/**
 * Writes JSON atomically as root, world-readable, in a root-owned directory: the temp file is
 * created exclusively (O_EXCL), its mode set on the open descriptor (whatever the umask — the guard
 * inherits the unit's UMask=0077), synced, and renamed over the target. Root never writes into a
 * directory the agent controls (a security review swapped a temp file there for a link between
 * create and chown).
 */
export async function writeRootJson(file: string, value: unknown, mode = 0o644): Promise<void> {
  const tmp = `${file}.tmp-${randomUUID()}`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.chmod(mode);
    await fh.writeFile(`${JSON.stringify(value, null, 2)}\n`);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(file));
}

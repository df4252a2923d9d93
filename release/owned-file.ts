import { randomUUID } from 'node:crypto';
import { chmod, chown, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncDir } from '../enroll/atomic-file.js';

/**
 * Writes JSON atomically for a given owner, safely in a directory someone else controls (root
 * writing into the agent's state dir): the temp file is created exclusively (O_EXCL, so never
 * through a planted link), handed to its owner, synced, and renamed over the target.
 */
export async function writeOwnedJson(
  file: string,
  value: unknown,
  owner: { uid: number; gid: number },
  mode = 0o644,
): Promise<void> {
  const tmp = `${file}.tmp-${randomUUID()}`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(`${JSON.stringify(value, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await chmod(tmp, mode); // whatever the umask (the guard inherits the unit's UMask=0077)
    if (process.getuid?.() === 0) await chown(tmp, owner.uid, owner.gid);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(file));
}

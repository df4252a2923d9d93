import { chmod, link, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * How the cloud writes its own secrets and identity (CA key and certificate, server key, data
 * key, admin token, release keys): a temp file in the same directory, written and fsynced, its
 * mode forced, then renamed into place (or, for `exclusive`, linked: it fails if the file exists)
 * and the directory fsynced. A power cut leaves the old file or the new one, never a torn or
 * empty key. (The agent has the same discipline in enroll/atomic-file.ts; the cloud does not
 * import the agent's code.)
 */
export async function writeSecretFile(
  path: string,
  data: string | Buffer,
  mode: number,
  opts: { exclusive?: boolean } = {},
): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await chmod(tmp, mode);
    if (opts.exclusive) {
      await link(tmp, path);
      await rm(tmp);
    } else {
      await rename(tmp, path);
    }
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { chmod, link, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Durable file writes, shared by every process (the agent's identity and state, the installer's
 * answers, the cloud's own secrets): a temp file in the same directory, written and fsynced, its
 * mode forced whatever the umask, then renamed into place — or, with `exclusive`, linked, which
 * fails if the file exists — and the directory fsynced. A power cut leaves the old file or the
 * new one, never a torn or empty one.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Buffer,
  mode: number,
  opts: { exclusive?: boolean } = {},
): Promise<void> {
  // Unique per write, not per millisecond: two writes in one process at once must not share a temp
  // file (the second would fail with EEXIST and look like "the file exists" to an exclusive caller).
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
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
  await syncDir(dirname(path));
}

/** The same, synchronously: for the few writes that must be on disk before the caller answers anyone. */
export function writeFileAtomicSync(path: string, data: string | Buffer, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    chmodSync(tmp, mode);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Creates a directory (and parents) and forces its mode, whatever the umask. */
export async function ensureDir(path: string, mode: number): Promise<void> {
  await mkdir(path, { recursive: true, mode });
  await chmod(path, mode);
}

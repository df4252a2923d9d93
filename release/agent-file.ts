import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { UpdateFailure } from './artifact.js';

/**
 * How root opens a file the agent wrote (the request, the download, the commit marker): never
 * through a link (O_NOFOLLOW), never blocking on a FIFO (O_NONBLOCK), only a regular file, only
 * one the service user owns (a file reached through a planted directory link that root or anyone
 * else owns is refused), and never larger than the caller allows.
 */
export interface ServiceUser {
  uid: number;
  gid: number;
}

export async function openAgentFile(
  file: string,
  owner: ServiceUser,
  maxBytes: number,
): Promise<FileHandle & { size: number }> {
  let fh: FileHandle;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UpdateFailure(
      code === 'ENOENT' ? `${file} does not exist` : `${file} cannot be opened (${code}): not a plain file`,
    );
  }
  try {
    const s = await fh.stat();
    if (!s.isFile()) throw new UpdateFailure(`${file} is not a regular file`);
    if (process.getuid?.() === 0 && owner.uid !== 0 && s.uid !== owner.uid)
      throw new UpdateFailure(`${file} is not owned by the service user`);
    if (s.size > maxBytes) throw new UpdateFailure(`${file} is larger than ${maxBytes} bytes`);
    return Object.assign(fh, { size: s.size });
  } catch (err) {
    await fh.close();
    throw err;
  }
}

export async function readAgentFile(file: string, owner: ServiceUser, maxBytes: number): Promise<Buffer> {
  const fh = await openAgentFile(file, owner, maxBytes);
  try {
    const b = Buffer.alloc(fh.size);
    const { bytesRead } = await fh.read(b, 0, fh.size, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Parses an agent's JSON file; what it holds is never echoed back in an error. */
export async function readAgentJson(file: string, owner: ServiceUser, maxBytes: number): Promise<unknown> {
  const text = (await readAgentFile(file, owner, maxBytes)).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new UpdateFailure(`${file} is not JSON`);
  }
}

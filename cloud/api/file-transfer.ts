import { open } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Refusal } from '../../protocol/refusal.js';

/**
 * A file as an HTTP answer (a release artifact): streamed with backpressure from disk, never whole
 * in memory, honouring one `Range`.
 */

/** What `Range:` asks of a file of `size` bytes: a byte span, everything (null), or nothing it has. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Not one range in bytes (several ranges, another unit, garbage): RFC 9110 lets us send it all.
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return null;
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** Bytes per read, and per write: one TLS record. */
const CHUNK = 16 * 1024;

/**
 * Answers a GET with a file, streamed with backpressure: a reader, however slow or stalled,
 * holds two 16 KB buffers on the cloud, reused for the whole download — no new buffer per chunk
 * (200 downloads at loopback speed would otherwise leave hundreds of MB of garbage for the GC).
 */
export async function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  file: string,
  contentType: string,
): Promise<void> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable')
      throw new Refusal(
        'range_not_satisfiable',
        `range ${req.headers.range} is beyond the file's ${size} bytes`,
        { contentRange: `bytes */${size}` },
      );
    const span = range ?? { start: 0, end: size - 1 };
    res.writeHead(range ? 206 : 200, {
      'content-type': contentType,
      'content-length': String(Math.max(0, span.end - span.start + 1)),
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${span.start}-${span.end}/${size}` } : {}),
    });
    let gone = false;
    res.once('close', () => {
      gone = true;
    });
    const buffers = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
    // The write still using each buffer; a buffer is read into again only once its write is done.
    const inFlight: (Promise<void> | undefined)[] = [undefined, undefined];
    let pos = span.start;
    for (let i = 0; pos <= span.end && !gone; i ^= 1) {
      await inFlight[i];
      const buf = buffers[i]!;
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, span.end - pos + 1), pos);
      if (bytesRead === 0 || gone) break;
      pos += bytesRead;
      let written!: () => void;
      inFlight[i] = new Promise<void>((resolve) => {
        written = resolve;
      });
      const more = res.write(buf.subarray(0, bytesRead), () => written());
      if (!more && !gone)
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.once('drain', done);
          res.once('close', done);
        });
    }
    if (!gone) {
      await Promise.all(inFlight);
      res.end();
    }
  } finally {
    await fh.close();
  }
}

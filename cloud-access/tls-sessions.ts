import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';

/**
 * The agent's TLS sessions with its cloud, so a reconnect (a cloud restart, a lost network, the
 * CLI's next call) resumes instead of making a full handshake: the cloud then sends no
 * certificate chain and neither side signs anything.
 *
 * One session per (cloud host:port, client certificate): a session made with one certificate is
 * never offered with another (after a renewal the new certificate makes a full handshake, and
 * the cloud sees the new certificate). Kept in memory; optionally in a file (0600, in the 0700
 * keys dir: a session holds its master secret), written atomically through `persist`.
 */
export class TlsSessions {
  private readonly sessions = new Map<string, Buffer>();
  private file: { path: string; write(path: string, data: string): Promise<void> } | null = null;
  private writing: Promise<void> = Promise.resolve();
  private readonly watched = new WeakSet<TLSSocket>();

  /** The cache key: where, and with which client certificate (its SHA-256). */
  static keyOf(host: string, port: number | string, cert: string | undefined): string {
    const id = cert ? createHash('sha256').update(cert).digest('hex').slice(0, 32) : 'anonymous';
    return `${host}:${port}|${id}`;
  }

  get(key: string): Buffer | undefined {
    return this.sessions.get(key);
  }

  /** Remembers each session (TLS 1.3 may send several tickets; the last one is kept). */
  watch(key: string, socket: TLSSocket): void {
    // A kept-alive socket is handed to each request: one listener per socket.
    if (this.watched.has(socket)) return;
    this.watched.add(socket);
    socket.on('session', (session: Buffer) => {
      this.sessions.set(key, session);
      this.save();
    });
  }

  /** Forgets a session the cloud no longer takes (a refused certificate, a handshake error). */
  forget(key: string): void {
    if (this.sessions.delete(key)) this.save();
  }

  /**
   * Keeps the sessions in `path` too (read now, written on every change), with the given
   * atomic write (files/atomic-file.ts, mode 0600). A file that does not parse is ignored.
   */
  persist(path: string, write: (path: string, data: string) => Promise<void>): void {
    this.file = { path, write };
    try {
      const saved = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
      for (const [k, v] of Object.entries(saved)) this.sessions.set(k, Buffer.from(v, 'base64'));
    } catch {
      // none yet, or unreadable: start empty
    }
  }

  private save(): void {
    const f = this.file;
    if (!f) return;
    const data = JSON.stringify(
      Object.fromEntries([...this.sessions].map(([k, v]) => [k, v.toString('base64')])),
    );
    this.writing = this.writing.then(() => f.write(f.path, data)).catch(() => {});
  }

  /** Resolves when what was remembered so far is on disk. */
  flushed(): Promise<void> {
    return this.writing;
  }
}

/** The process's sessions: the link and the HTTPS calls share them. */
export const tlsSessions = new TlsSessions();

/**
 * A tls.connect for ws (`createConnection`) and the proxy's tunnel that offers the session kept
 * for `key` and keeps the new one; `onSecure` sees the socket once its handshake is done (to
 * tell whether the session was resumed).
 */
export function resumingTlsConnect(
  key: string,
  onSecure?: (socket: TLSSocket) => void,
  sessions: TlsSessions = tlsSessions,
): (options: ConnectionOptions) => TLSSocket {
  return (options) => {
    const session = sessions.get(key);
    const host = options.host ?? '';
    const s = tlsConnect({
      ...options,
      // What ws's own tls.connect does: SNI for a name, none for an address.
      ...(options.servername === undefined ? { servername: isIP(host) ? '' : host } : {}),
      ...(session ? { session } : {}),
    });
    sessions.watch(key, s);
    if (onSecure) s.once('secureConnect', () => onSecure(s));
    return s;
  };
}

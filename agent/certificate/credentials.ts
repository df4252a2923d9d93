import { readFile } from 'node:fs/promises';
import { type Identity, readClientTls } from '../../identity/identity-store.js';

export type ClientTls = Awaited<ReturnType<typeof readClientTls>>;

/**
 * The terminal's credentials in use: its TLS key, certificate and pinned CA (read at every link
 * attempt and download) and the cloud's card-data public key. A renewal installs new files and
 * calls `reload()`; every reader sees the new pair from then on.
 */
export class Credentials {
  private constructor(
    private readonly identity: Identity,
    private current: ClientTls,
    private dataKey: string | null,
  ) {}

  static async load(identity: Identity): Promise<Credentials> {
    const dataKey = await readFile(identity.paths.dataKeyFile, 'utf8').catch(() => null);
    return new Credentials(identity, await readClientTls(identity), dataKey);
  }

  tls(): ClientTls {
    return this.current;
  }

  /** The cloud's key that seals card data before it is stored; null when the cloud gave none. */
  dataPublicKey(): string | null {
    return this.dataKey;
  }

  async reload(): Promise<void> {
    this.current = await readClientTls(this.identity);
    this.dataKey = await readFile(this.identity.paths.dataKeyFile, 'utf8').catch(() => this.dataKey);
  }
}

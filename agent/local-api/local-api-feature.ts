import type { Feature } from '../feature.js';
import type { Logger } from '../logger.js';
import type { ConnectionLimits } from './connection-limits.js';
import { LocalApi } from './local-api.js';

/** The local API on its Unix socket, answering the routes the other features own. */
export class LocalApiFeature implements Feature {
  readonly name = 'local-api';
  private readonly api: LocalApi;

  constructor(socketPath: string, features: readonly Feature[], limits: ConnectionLimits, log: Logger) {
    this.api = new LocalApi(
      socketPath,
      features.flatMap((f) => f.routes ?? []),
      log,
      limits,
    );
  }

  start(): Promise<void> {
    return this.api.start();
  }

  stop(): Promise<void> {
    return this.api.stop();
  }
}

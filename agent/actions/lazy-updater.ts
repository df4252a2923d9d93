import type { ActionRow } from './action-store.js';
import type { SoftwareUpdater, UpdaterDeps } from './software-update.js';

/** What the action runner asks of the software update (software-update.ts). */
export type Updates = Pick<SoftwareUpdater, 'atStart' | 'run' | 'onOnline' | 'stop'>;

/**
 * The software update, loaded on first use: most daemons never run an update, and its code (the
 * release layout, the artifact's signature and version checks, the installer's steps) stays out
 * of the idle daemon until an update is received or one is found open at start. Nothing on trial
 * exists before it is loaded (only `atStart` puts a version on trial), so `onOnline` and `stop`
 * have nothing to do until then.
 */
export class LazyUpdater implements Updates {
  private loaded: Promise<SoftwareUpdater> | null = null;
  private updater: SoftwareUpdater | null = null;

  constructor(private readonly deps: UpdaterDeps) {}

  private load(): Promise<SoftwareUpdater> {
    this.loaded ??= import('./software-update.js').then(({ SoftwareUpdater }) => {
      this.updater = new SoftwareUpdater(this.deps);
      return this.updater;
    });
    return this.loaded;
  }

  async atStart(row: ActionRow): Promise<boolean> {
    return (await this.load()).atStart(row);
  }

  async run(row: ActionRow, signal: AbortSignal): Promise<void> {
    return (await this.load()).run(row, signal);
  }

  async onOnline(): Promise<void> {
    await this.updater?.onOnline();
  }

  stop(): void {
    this.updater?.stop();
  }
}

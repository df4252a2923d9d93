/** A desired config to send a terminal: what the gateway is handed to push (it looks nothing up). */
export interface ConfigPush {
  terminalId: string;
  version: number;
  config: Record<string, unknown>;
}

/**
 * What happens in the cloud that another part acts on, from name to payload: a service says what
 * happened, `cloud/main.ts` decides who listens. Listeners run at once, in the order they were
 * added, inside whatever store transaction the emitter is in (an event marked "in the
 * transaction" is written to the webhook outbox with the change that caused it, or not at all);
 * the emitter awaits `emit`.
 */
export interface CloudEvents {
  /** A terminal was created by an enrollment (in the transaction). */
  'terminal.enrolled': { terminalId: string; method: 'code' | 'auto' | 'pair'; replaces: string | null };
  /** A terminal was deactivated (in the transaction). */
  'terminal.deactivated': { terminalId: string; reason: string };
  /** A terminal's link came up (after Hello) or went down. */
  'terminal.link': { terminalId: string };
  /** Something a terminal's status is derived from changed (a refused link, a heartbeat, a revocation). */
  'terminal.status': { terminalId: string };
  /** A gateway's heartbeat batch was written: these terminals' statuses may have changed. */
  'terminals.beat': { terminalIds: readonly string[] };
  /** A terminal was renamed or moved. */
  'terminal.profile': { terminalId: string };
  /** New desired configs were stored (after the transaction): each to push if its terminal is connected. */
  'config.desired': { pushes: ConfigPush[] };
  /** An action was queued for a terminal. */
  'action.queued': { terminalId: string };
  /** An action reached completed or failed (in the transaction). */
  'action.finished': {
    terminalId: string;
    actionId: string;
    status: 'completed' | 'failed';
    reason: string | null;
  };
}

type Listener<P> = (payload: P) => void | Promise<void>;

/**
 * An event bus typed by an event map: a payload of the wrong shape does not compile. `emit` runs
 * the listeners one after the other, each awaited (the store answers promises), so the emitter
 * that awaits it knows they are done: inside a transaction their writes are in it.
 */
export class EventBus<E extends object> {
  private readonly listeners = new Map<keyof E, Listener<never>[]>();

  on<K extends keyof E>(event: K, listener: Listener<E[K]>): void {
    const list = this.listeners.get(event) ?? [];
    list.push(listener as Listener<never>);
    this.listeners.set(event, list);
  }

  /** Calls every listener of `event` in order; a listener's error propagates (it rolls the transaction back). */
  async emit<K extends keyof E>(event: K, payload: E[K]): Promise<void> {
    for (const l of this.listeners.get(event) ?? []) await (l as Listener<E[K]>)(payload);
  }
}

export type CloudBus = Pick<EventBus<CloudEvents>, 'emit'>;

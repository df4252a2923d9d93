import type { AgentEventMap, AgentEventName } from './event-map.js';
import { newRunId, type Replay, ReplayWindow, type StoredEvent } from './event-replay.js';

export type { AgentEventMap, AgentEventName } from './event-map.js';

/**
 * Events the agent tells the POS app about (local API `GET /v1/events`, server-sent events).
 * In-process only: anything that must survive a crash is in the store first. Each event gets an
 * id and stays in a bounded replay window (agent/event-replay.ts), so a reader that reconnects
 * with `Last-Event-ID` misses nothing that is still there.
 */
/** An event name with its payload; `event` tells which payload `data` is (narrow on it). */
export type PublishedEvent = { [K in AgentEventName]: { event: K; data: AgentEventMap[K] } }[AgentEventName];

/** One published event, with its id and frame. */
export type AgentEvent = {
  [K in AgentEventName]: {
    id: string;
    event: K;
    data: AgentEventMap[K];
    /** The SSE frame of this event, made once (when a reader first needs it) for every reader. */
    readonly frame: string;
  };
}[AgentEventName];

export class EventBus {
  private readonly listeners = new Set<(e: AgentEvent) => void>();
  private readonly window: ReplayWindow;

  constructor(o: { now?: () => number; runId?: string } = {}) {
    this.window = new ReplayWindow(o.runId ?? newRunId((o.now ?? Date.now)()));
  }

  /** Publishes an event; its payload must be the one the event map names for it. */
  publish<K extends AgentEventName>(event: K, data: AgentEventMap[K]): void {
    const e = this.window.append(event, data) as StoredEvent & AgentEvent;
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // a broken listener (a closed socket) must not stop the others
      }
    }
  }

  subscribe(listener: (e: AgentEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The events after `lastEventId` still in the window, or why they cannot be replayed. */
  since(lastEventId: string): Replay {
    return this.window.since(lastEventId);
  }

  get size(): number {
    return this.listeners.size;
  }
}

/**
 * Events the agent tells the POS app about (local API `GET /v1/events`, server-sent events).
 * In-process only: anything that must survive a crash is in the store first.
 */
export type AgentEventName = 'link' | 'config' | 'lock' | 'action' | 'transaction' | 'profile';
export interface AgentEvent {
  event: AgentEventName;
  data: unknown;
}

export class EventBus {
  private readonly listeners = new Set<(e: AgentEvent) => void>();

  publish(event: AgentEventName, data: unknown): void {
    for (const l of this.listeners) {
      try {
        l({ event, data });
      } catch {
        // a broken listener (a closed socket) must not stop the others
      }
    }
  }

  subscribe(listener: (e: AgentEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get size(): number {
    return this.listeners.size;
  }
}

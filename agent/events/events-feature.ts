import type { Feature } from '../feature.js';
import type { ConnectionLimits } from '../local-api/connection-limits.js';
import type { LocalRoute } from '../local-api/local-api.js';
import type { Logger } from '../logger.js';
import type { EventBus } from './event-bus.js';
import { serveEvents } from './event-stream.js';

/** `GET /v1/events`: the process's event bus as server-sent events, capped, with replay behind Last-Event-ID. */
export class EventsFeature implements Feature {
  readonly name = 'events';
  readonly routes: LocalRoute[];

  constructor(events: EventBus, limits: ConnectionLimits, log: Logger) {
    this.routes = [
      {
        method: 'GET',
        pattern: /^\/v1\/events$/,
        stream: serveEvents(events, { maxStreams: limits.streams, log }),
      },
    ];
  }
}

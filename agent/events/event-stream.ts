import type { IncomingMessage, ServerResponse } from 'node:http';
import { Refusal } from '../../protocol/refusal.js';
import type { EventBus } from './event-bus.js';

/**
 * `GET /v1/events`: server-sent events from the bus. Each event is one `id:`/`event:`/`data:`
 * frame; a comment line every 15 s tells idle proxies and clients the stream is alive.
 *
 * - A reader that sends `Last-Event-ID` (or `?lastEventId=`) first gets the events it missed that
 *   are still in the replay window; when they are not, one `missed` event says so (then it should
 *   read the state again: `GET /v1/status`, `/v1/transactions`…).
 * - At most `maxStreams` streams are open at once; past that, `503 too_many_streams`.
 * - Writes respect backpressure: a reader that does not read is dropped once `maxBufferedBytes`
 *   wait for it, or when its buffer has not drained for `stallMs` — the daemon's memory stays flat
 *   whatever a paused or broken reader does. It can reconnect with `Last-Event-ID`.
 */
export interface EventStreamOptions {
  maxStreams: number;
  keepAliveMs?: number;
  maxBufferedBytes?: number;
  stallMs?: number;
  log?: { warn(obj: object, msg: string): void };
}

export const EVENT_STREAM_DEFAULTS = { keepAliveMs: 15_000, maxBufferedBytes: 64 * 1024, stallMs: 10_000 };

export interface EventStreamHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Streams open now. */
  open(): number;
}

export function serveEvents(bus: EventBus, options: EventStreamOptions): EventStreamHandler {
  const o = { ...EVENT_STREAM_DEFAULTS, ...options };
  let open = 0;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (open >= o.maxStreams) {
      // Answered by the local API with its status (agent/local-api-statuses.ts), the connection closed.
      throw new Refusal(
        'too_many_streams',
        `${open} event streams are open, the most this agent serves at once (${o.maxStreams}); close one and retry`,
      );
    }
    open++;
    let ended = false;
    let stall: NodeJS.Timeout | undefined;
    const drop = (why: string) => {
      if (ended) return;
      o.log?.warn({ buffered: res.writableLength, why }, 'event stream reader dropped: it does not read');
      res.destroy();
    };
    const write = (text: string) => {
      if (ended || res.destroyed) return;
      if (res.writableLength + text.length > o.maxBufferedBytes) return drop('its buffer is full');
      if (!res.write(text) && !stall) {
        stall = setTimeout(() => drop(`its buffer has not drained for ${o.stallMs} ms`), o.stallMs);
        stall.unref();
      }
    };
    res.on('drain', () => {
      clearTimeout(stall);
      stall = undefined;
    });
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    write(': posagent events\nretry: 1000\n\n');
    const lastEventId =
      headerValue(req.headers['last-event-id']) ??
      new URL(req.url ?? '/', 'http://posagent').searchParams.get('lastEventId');
    if (lastEventId) {
      const replay = bus.since(lastEventId);
      if (replay.ok) for (const e of replay.events) write(e.frame);
      else
        write(
          `event: missed\ndata: ${JSON.stringify({ lastEventId, reason: replay.reason, oldestId: replay.oldestId })}\n\n`,
        );
    }
    // Replay and subscribe in the same tick: no event can fall between them.
    const unsubscribe = bus.subscribe((e) => write(e.frame));
    const keepAlive = setInterval(() => write(': keep-alive\n\n'), o.keepAliveMs);
    keepAlive.unref();
    const end = () => {
      if (ended) return;
      ended = true;
      open--;
      clearInterval(keepAlive);
      clearTimeout(stall);
      unsubscribe();
    };
    req.on('close', end);
    res.on('close', end);
  };
  return Object.assign(handler, { open: () => open });
}

function headerValue(h: string | string[] | undefined): string | null {
  return (Array.isArray(h) ? h[0] : h) || null;
}

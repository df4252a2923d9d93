import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventBus } from './event-bus.js';

/**
 * `GET /v1/events`: server-sent events from the bus, one `event:`/`data:` pair per event, with a
 * comment line every 15 s so idle proxies and clients see the stream is alive.
 */
export function serveEvents(bus: EventBus, keepAliveMs = 15_000) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.write(': posagent events\n\n');
    const unsubscribe = bus.subscribe((e) => {
      res.write(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
    });
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), keepAliveMs);
    keepAlive.unref();
    const end = () => {
      clearInterval(keepAlive);
      unsubscribe();
    };
    req.on('close', end);
    res.on('close', end);
  };
}

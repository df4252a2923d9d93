import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on loopback between an agent and the cloud that can misbehave on demand, like a
 * basement network: pass, delay every chunk, black-hole (half-open: sockets stay up, nothing
 * moves), reset (RST), or cut the connections after a number of bytes.
 */
export type FaultMode =
  | { kind: 'pass' }
  | { kind: 'delay'; ms: number }
  | { kind: 'blackhole' }
  | { kind: 'reset' };

export interface FaultProxy {
  port: number;
  url: string;
  /** When each client connection arrived. */
  connections: number[];
  set(mode: FaultMode): void;
  /** Cuts every open connection (FIN) once `bytes` more bytes have gone towards the cloud. */
  cutAfter(bytes: number): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  let mode: FaultMode = { kind: 'pass' };
  const pairs = new Set<[Socket, Socket]>();
  const connections: number[] = [];
  let cut: { left: number; done: () => void } | null = null;

  const pipe = (from: Socket, to: Socket, upstream: boolean) => {
    from.on('data', (chunk: Buffer) => {
      if (mode.kind === 'blackhole') return; // swallowed: neither side hears anything
      const forward = () => {
        if (!to.destroyed) to.write(chunk);
      };
      if (mode.kind === 'delay') setTimeout(forward, mode.ms);
      else forward();
      if (upstream && cut) {
        cut.left -= chunk.length;
        if (cut.left <= 0) {
          const c = cut;
          cut = null;
          for (const [a, b] of pairs) {
            a.end();
            b.end();
          }
          c.done();
        }
      }
    });
  };

  const server: Server = createServer((client) => {
    connections.push(Date.now());
    if (mode.kind === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    pipe(client, upstream, true);
    pipe(upstream, client, false);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    connections,
    set(m) {
      mode = m;
      if (m.kind === 'reset')
        for (const [a, b] of pairs) {
          a.resetAndDestroy();
          b.destroy();
        }
    },
    cutAfter(bytes) {
      return new Promise((done) => {
        cut = { left: bytes, done };
      });
    },
    close: () =>
      new Promise((r) => {
        for (const [a, b] of pairs) {
          a.destroy();
          b.destroy();
        }
        server.close(() => r());
      }),
  };
}

import { createRequire } from 'node:module';

/**
 * sd_notify for systemd's `Type=notify`: READY=1 once the store is open, the local API listens and
 * the first link attempt has begun; STATUS= with the link state; WATCHDOG=1 from a timer on the
 * event loop (so only a stuck loop stops it — never a cloud outage: liveness is not
 * connectivity); STOPPING=1 on shutdown.
 *
 * The notify socket is an AF_UNIX datagram socket, which Node cannot open; `unix-dgram` (a small
 * native addon) sends from this very process, so the unit can keep `NotifyAccess=main`.
 * `systemd-notify` was the alternative: a process per ping, `NotifyAccess=all`, and on systemd
 * < 254 messages lost when it exits before systemd reads them.
 */
export interface ServiceNotifier {
  ready(status: string): void;
  status(text: string): void;
  stopping(): void;
  close(): void;
}

export const NO_NOTIFIER: ServiceNotifier = {
  ready() {},
  status() {},
  stopping() {},
  close() {},
};

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  close(): void;
  on(event: 'error', cb: (err: Error) => void): void;
}

/** A notifier when systemd asked for one (NOTIFY_SOCKET), else one that does nothing. */
export function serviceNotifier(
  env: Record<string, string | undefined>,
  log: { warn(obj: object, msg: string): void },
): ServiceNotifier {
  const target = env.NOTIFY_SOCKET;
  if (!target) return NO_NOTIFIER;
  let socket: DgramSocket;
  try {
    const { createSocket } = createRequire(import.meta.url)('unix-dgram') as {
      createSocket(type: 'unix_dgram'): DgramSocket;
    };
    socket = createSocket('unix_dgram');
  } catch (err) {
    log.warn(
      { err: (err as Error).message },
      'NOTIFY_SOCKET is set but unix-dgram is missing; systemd will not hear from the agent',
    );
    return NO_NOTIFIER;
  }
  socket.on('error', (err) => log.warn({ err: err.message }, 'sd_notify failed'));
  // "@name" is an abstract socket.
  const path = target.startsWith('@') ? `\0${target.slice(1)}` : target;
  const send = (text: string) => {
    const buf = Buffer.from(text);
    socket.send(buf, 0, buf.length, path);
  };

  // The watchdog is systemd's, for this process only (WATCHDOG_PID, when set, names it).
  const usec = Number(env.WATCHDOG_USEC ?? 0);
  const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
  let timer: NodeJS.Timeout | undefined;
  if (usec > 0 && forUs) {
    // Twice per period, as sd_watchdog_enabled(3) advises.
    timer = setInterval(() => send('WATCHDOG=1'), Math.max(50, Math.floor(usec / 2000)));
    timer.unref();
  }
  return {
    ready: (status) => send(`READY=1\nSTATUS=${status}\nMAINPID=${process.pid}`),
    status: (text) => send(`STATUS=${text}`),
    stopping: () => send('STOPPING=1\nSTATUS=stopping'),
    close: () => {
      clearInterval(timer);
      socket.close();
    },
  };
}

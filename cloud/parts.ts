/** A part of the cloud the composition root starts in order and stops in reverse. */
export interface Part {
  name: string;
  start?(): void | Promise<void>;
  stop?(): void | Promise<void>;
}

/**
 * Starts `parts` in order. The stop it returns stops them in reverse, each on its own: one that
 * fails is logged and the others still stop. Calling it again returns the same stopping.
 */
export async function startParts(
  parts: readonly Part[],
  log: { info(msg: string): void; error(obj: object, msg: string): void },
): Promise<() => Promise<void>> {
  for (const p of parts) await p.start?.();
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      log.info('cloud stopping');
      for (const p of [...parts].reverse()) {
        try {
          await p.stop?.();
        } catch (err) {
          log.error({ part: p.name, err: (err as Error).message }, 'stopping a part failed');
        }
      }
    })();
    return stopping;
  };
}

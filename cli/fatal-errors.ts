/**
 * The last line of defence of a long-running process (`posagent run`, `posagent-cloud serve`):
 * an unhandled rejection or an uncaught exception is logged with its stack and ends the process
 * with a non-zero code, so systemd (Restart=on-failure) starts it again and the journal says why.
 * Never silent, never ignored. The e2e helpers fail any test whose processes log one.
 */
export const FATAL_EXIT_CODE = 70; // EX_SOFTWARE
export const UNHANDLED_REJECTION = 'unhandled promise rejection; exiting';
export const UNCAUGHT_EXCEPTION = 'uncaught exception; exiting';

export function exitOnUnhandled(
  log: { fatal(obj: object, msg: string): void },
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  const die = (msg: string) => (reason: unknown) => {
    const err = reason instanceof Error ? reason : new Error(`non-error thrown: ${String(reason)}`);
    try {
      log.fatal({ err }, msg);
    } finally {
      exit(FATAL_EXIT_CODE);
    }
  };
  process.on('unhandledRejection', die(UNHANDLED_REJECTION));
  process.on('uncaughtException', die(UNCAUGHT_EXCEPTION));
}

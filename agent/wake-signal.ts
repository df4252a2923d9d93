/**
 * "Something new to send" for a loop that runs while a link is up: `wait` resolves on the next
 * `wake` or when the link ends, whichever comes first. Used by the outbox and the forwarder.
 */
export class WakeSignal {
  private wakeUp: (() => void) | undefined;

  wake(): void {
    this.wakeUp?.();
  }

  wait(linkSignal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        this.wakeUp = undefined;
        linkSignal.removeEventListener('abort', done);
        resolve();
      };
      this.wakeUp = done;
      linkSignal.addEventListener('abort', done, { once: true });
    });
  }
}

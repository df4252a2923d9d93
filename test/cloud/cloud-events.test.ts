import { describe, expect, it } from 'vitest';
import { type CloudEvents, EventBus } from '../../cloud/cloud-events.js';

describe('the cloud event bus (cloud/cloud-events.ts)', () => {
  it('listeners run in the order added, each awaited, with the payload as emitted', async () => {
    const bus = new EventBus<CloudEvents>();
    const seen: string[] = [];
    bus.on('terminal.deactivated', (e) => {
      seen.push(`a ${e.terminalId} ${e.reason}`);
    });
    bus.on('terminal.deactivated', async (e) => {
      await Promise.resolve();
      seen.push(`b ${e.terminalId}`);
    });
    bus.on('terminal.link', () => {
      seen.push('not this one');
    });
    await bus.emit('terminal.deactivated', { terminalId: 't1', reason: 'gone' });
    expect(seen).toEqual(['a t1 gone', 'b t1']);
  });

  it("a listener's error reaches the emitter (so it rolls back the transaction it runs in)", async () => {
    const bus = new EventBus<CloudEvents>();
    bus.on('action.queued', () => {
      throw new Error('listener failed');
    });
    await expect(bus.emit('action.queued', { terminalId: 't1' })).rejects.toThrow('listener failed');
  });

  it('an event nobody listens to is fine', async () => {
    await expect(new EventBus<CloudEvents>().emit('terminal.profile', { terminalId: 't1' })).resolves.toBe(
      undefined,
    );
  });
});

import { describe, expect, it } from 'vitest';
import { type CloudEvents, EventBus } from '../../cloud/cloud-events.js';

describe('the cloud event bus (cloud/cloud-events.ts)', () => {
  it('listeners run at once, in the order added, with the payload as emitted', () => {
    const bus = new EventBus<CloudEvents>();
    const seen: string[] = [];
    bus.on('terminal.deactivated', (e) => seen.push(`a ${e.terminalId} ${e.reason}`));
    bus.on('terminal.deactivated', (e) => seen.push(`b ${e.terminalId}`));
    bus.on('terminal.link', () => seen.push('not this one'));
    bus.emit('terminal.deactivated', { terminalId: 't1', reason: 'gone' });
    expect(seen).toEqual(['a t1 gone', 'b t1']);
  });

  it("a listener's error reaches the emitter (so it rolls back the transaction it runs in)", () => {
    const bus = new EventBus<CloudEvents>();
    bus.on('action.queued', () => {
      throw new Error('listener failed');
    });
    expect(() => bus.emit('action.queued', { terminalId: 't1' })).toThrow('listener failed');
  });

  it('an event nobody listens to is fine', () => {
    expect(() => new EventBus<CloudEvents>().emit('terminal.profile', { terminalId: 't1' })).not.toThrow();
  });
});

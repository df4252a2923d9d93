import { describe, expect, it } from 'vitest';
import { EventBus } from '../../../agent/events/event-bus.js';
import { RECENT_ERRORS_KEPT, RecentErrors } from '../../../agent/events/recent-errors.js';
import type { LinkSnapshot, LinkState } from '../../../agent/link/link-state.js';
import { DEFAULT_CONFIG } from '../../../protocol/config-schema.js';

/** Issue 18.5: what the menu's "Last errors" lists, from the daemon's own events. */
describe('recent errors', () => {
  it('keeps link drops and refusals, refused configs, failed enrollments and actions; not the rest', () => {
    const bus = new EventBus();
    let t = Date.parse('2026-11-23T10:00:00Z');
    const errors = new RecentErrors(bus, () => t);
    const link = (state: LinkState, reason: string | null): LinkSnapshot => ({
      state,
      reason,
      since: '2026-11-23T10:00:00.000Z',
      lastHeartbeatAt: null,
    });
    const failed = { status: 'failed' as const, step: null, percent: null };
    bus.publish('link', link('online', null));
    bus.publish('link', link('offline', 'cloud closed the link (1012: cloud restarting)'));
    bus.publish('link', link('connecting', 'cloud closed the link (1012: cloud restarting)'));
    bus.publish('link', link('online', null));
    bus.publish('config', {
      status: 'rejected',
      version: 4,
      errors: [{ path: '/tip/mode', message: 'must be one of…' }],
      appliedVersion: 3,
    });
    bus.publish('config', { status: 'applied', version: 5, config: DEFAULT_CONFIG });
    bus.publish('enrollment', { state: 'failed', reason: 'not_preregistered', retryInMs: 100 });
    bus.publish('action', { id: 'a', type: 'reboot', ...failed, reason: 'the reboot command failed' });
    bus.publish('link', link('offline', 'agent stopped'));
    t += 1000;
    expect(errors.list().map((e) => [e.source, e.message])).toEqual([
      ['link', 'offline: cloud closed the link (1012: cloud restarting)'],
      ['config', 'version 4 refused: /tip/mode must be one of…'],
      ['enrollment', 'not_preregistered'],
      ['action', 'reboot failed: the reboot command failed'],
    ]);
  });

  it('the same problem again in a row is one entry with a count; the list is bounded', () => {
    const bus = new EventBus();
    const errors = new RecentErrors(bus);
    const link = (state: LinkState, reason: string): LinkSnapshot => ({
      state,
      reason,
      since: '2026-11-23T10:00:00.000Z',
      lastHeartbeatAt: null,
    });
    for (let i = 0; i < 5; i++) bus.publish('link', link('offline', 'cannot reach the cloud (ECONNREFUSED)'));
    expect(errors.list()).toEqual([expect.objectContaining({ count: 5 })]);
    for (let i = 0; i < 200; i++) bus.publish('link', link('error', `refused ${i}`));
    expect(errors.list()).toHaveLength(RECENT_ERRORS_KEPT);
    expect(errors.list().at(-1)?.message).toBe('error: refused 199');
  });
});

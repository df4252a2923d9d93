import type { ActionService } from '../actions/action-service.js';
import type { CloudEvents, EventBus } from '../cloud-events.js';
import type { TerminalStore } from '../store/store-types.js';
import type { Webhooks } from './webhooks.js';

/**
 * Which cloud events become webhook events, and with what: written to the outbox inside the
 * transaction of the change (the listeners run there). Status changes are announced by
 * cloud/fleet/status-announcer.ts.
 */
export function sendFleetWebhooks(
  bus: Pick<EventBus<CloudEvents>, 'on'>,
  webhooks: Pick<Webhooks, 'emit'>,
  terminals: Pick<TerminalStore, 'get'>,
  actions: Pick<ActionService, 'get'>,
): void {
  bus.on('terminal.enrolled', async ({ terminalId, method, replaces }) => {
    const row = (await terminals.get(terminalId))!;
    await webhooks.emit('terminal.enrolled', {
      id: terminalId,
      terminalId,
      name: row.name,
      locationId: row.locationId,
      method,
      replaces,
    });
  });
  bus.on(
    'action.finished',
    async ({ terminalId, actionId, status }) =>
      await webhooks.emit(
        status === 'completed' ? 'terminal_action.completed' : 'terminal_action.failed',
        await actions.get(terminalId, actionId),
      ),
  );
}

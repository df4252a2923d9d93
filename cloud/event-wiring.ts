import type { ActionService } from './actions/action-service.js';
import type { CloudEvents, EventBus } from './cloud-events.js';
import type { DeploymentService } from './deployments/deployment-service.js';
import type { FleetService } from './fleet/fleet-service.js';
import type { StatusAnnouncer } from './fleet/status-announcer.js';
import type { LinkRouter } from './gateway/link-router.js';
import type { CloudStore } from './store/store-types.js';
import { sendFleetWebhooks } from './webhooks/fleet-webhooks.js';
import type { Webhooks } from './webhooks/webhooks.js';

/**
 * Who acts on what happens (cloud-events.ts), part of the composition root; listeners run in this
 * order. Work for a terminal's link goes through the router: to this gateway's link, or as a call
 * to the gateway that holds it.
 */
export function wireEvents(
  bus: EventBus<CloudEvents>,
  p: {
    fleet: FleetService;
    announcer: StatusAnnouncer;
    router: LinkRouter;
    webhooks: Webhooks;
    store: CloudStore;
    actions: ActionService;
    deployments: DeploymentService;
  },
): void {
  bus.on('terminal.enrolled', (e) => p.fleet.enrolled(e.terminalId, e.replaces));
  bus.on('terminal.deactivated', (e) => p.announcer.check(e.terminalId));
  bus.on('terminal.deactivated', (e) => p.router.deactivate(e.terminalId, e.reason));
  bus.on('terminal.link', (e) => p.announcer.check(e.terminalId));
  bus.on('terminal.status', (e) => p.announcer.check(e.terminalId));
  bus.on('terminal.profile', (e) => p.router.pushProfile(e.terminalId));
  bus.on('config.desired', async (e) => {
    for (const push of e.pushes) await p.router.pushConfig(push.terminalId);
  });
  bus.on('action.queued', (e) => p.router.deliverActions(e.terminalId));
  // A deployment's terminal ends with its update action (in the action's transaction).
  bus.on('action.finished', (e) => p.deployments.actionFinished(e.actionId, e.status, e.reason));
  sendFleetWebhooks(bus, p.webhooks, p.store.terminals, p.actions);
}

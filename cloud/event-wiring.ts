import type { ActionService } from './actions/action-service.js';
import type { CloudEvents, EventBus } from './cloud-events.js';
import type { DeploymentService } from './deployments/deployment-service.js';
import type { FleetService } from './fleet/fleet-service.js';
import type { StatusAnnouncer } from './fleet/status-announcer.js';
import type { LinkRouter } from './gateway/link-router.js';
import { Pacer } from './pacer.js';
import type { CloudStore } from './store/store-types.js';
import { sendFleetWebhooks } from './webhooks/fleet-webhooks.js';
import type { Webhooks } from './webhooks/webhooks.js';

/**
 * Who acts on what happens (cloud-events.ts), part of the composition root; listeners run in this
 * order. Work for a terminal's link goes through the router: to this gateway's link, or as a call
 * to the gateway that holds it. A change for many terminals is paced (cloud/pacer.ts): its pushes
 * start at most `configPushesPerSec` a second, jittered; `stop()` drops what still waits (each
 * terminal gets its desired config at its next Hello anyway).
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
    configPushesPerSec: number;
    log: { warn(obj: object, msg: string): void };
  },
): { stop(): void } {
  const configPushes = new Pacer<string>({
    perSecond: p.configPushesPerSec,
    run: (terminalId) => p.router.pushConfig(terminalId),
    onError: (terminalId, err) =>
      p.log.warn({ terminalId, err: err.message }, 'config push failed; sent again at its next Hello'),
    now: Date.now,
    random: Math.random,
  });
  bus.on('terminal.enrolled', (e) => p.fleet.enrolled(e.terminalId, e.replaces));
  bus.on('terminal.deactivated', (e) => p.announcer.check(e.terminalId));
  bus.on('terminal.deactivated', (e) => p.router.deactivate(e.terminalId, e.reason));
  bus.on('terminal.link', (e) => p.announcer.check(e.terminalId));
  bus.on('terminal.status', (e) => p.announcer.check(e.terminalId));
  bus.on('terminals.beat', (e) => p.announcer.checkMany(e.terminalIds));
  bus.on('terminal.profile', (e) => p.router.pushProfile(e.terminalId));
  bus.on('config.desired', (e) => {
    for (const push of e.pushes) configPushes.add(push.terminalId, push.terminalId);
  });
  bus.on('action.queued', (e) => p.router.deliverActions(e.terminalId));
  // A deployment's terminal ends with its update action (in the action's transaction).
  bus.on('action.finished', (e) => p.deployments.actionFinished(e.actionId, e.status, e.reason));
  sendFleetWebhooks(bus, p.webhooks, p.store.terminals, p.actions);
  return { stop: () => configPushes.stop() };
}

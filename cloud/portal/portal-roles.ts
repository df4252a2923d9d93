import type { OperatorRole } from '../store/store-types.js';

/**
 * What each operator role may do in the portal, in one table. Support looks, checks, reboots,
 * locks, renews and reprovisions (the support guide's work); only admin deactivates,
 * decommissions, replaces, changes configuration, publishes releases, or manages operators and
 * webhooks. A new action is refused to everyone until it is listed here.
 */
export const PORTAL_ACTIONS = {
  view: ['admin', 'support'],
  'terminal.check_connection': ['admin', 'support'],
  'terminal.diagnostics': ['admin', 'support'],
  'terminal.reboot': ['admin', 'support'],
  'terminal.collect_logs': ['admin', 'support'],
  'terminal.lock': ['admin', 'support'],
  'terminal.unlock': ['admin', 'support'],
  'terminal.rotate_certificate': ['admin', 'support'],
  'terminal.reprovision': ['admin', 'support'],
  'terminal.rename': ['admin', 'support'],
  'terminal.register': ['admin', 'support'],
  'terminal.deactivate': ['admin'],
  'terminal.decommission': ['admin'],
  'terminal.replace': ['admin'],
  'terminal.revoke_certificate': ['admin'],
  'terminal.configure': ['admin'],
  'location.configure': ['admin'],
  'location.manage': ['admin'],
  'release.publish': ['admin'],
  'deployment.manage': ['admin'],
  'operator.manage': ['admin'],
  'webhook.manage': ['admin'],
} as const satisfies Record<string, readonly OperatorRole[]>;

export type PortalAction = keyof typeof PORTAL_ACTIONS;

export function mayDo(role: OperatorRole, action: PortalAction): boolean {
  return (PORTAL_ACTIONS[action] as readonly OperatorRole[]).includes(role);
}

export const OPERATOR_ROLES: readonly OperatorRole[] = ['admin', 'support'];

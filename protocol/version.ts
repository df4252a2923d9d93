/** Protocol identity shared by agent and cloud. */
export const PROTOCOL_VERSION = 1;
/** WebSocket subprotocol the agent offers and the cloud requires. */
export const SUBPROTOCOL = 'posagent.v1';
/** Path of the agent gateway on the cloud. */
export const AGENT_PATH = '/v1/agent';
/** Path of the agent-facing enrollment endpoint on the cloud. */
export const ENROLL_PATH = '/v1/enroll';
/** Close codes used on the agent link (4000-4999 are application codes). */
export const CloseCode = {
  /** Normal closure. */
  normal: 1000,
  /** The agent is shutting down on purpose (SIGTERM). */
  agentShutdown: 4000,
  /** The cloud is restarting: agents spread their first retry. */
  serviceRestart: 1012,
  /** The cloud does not speak the protocol version the agent's Hello named (after a NotSupported error). */
  unsupportedProtocol: 4002,
  /** The cloud refused the terminal (deactivated, identity mismatch). */
  refused: 4003,
  /** Liveness lost: pongs missed. */
  livenessLost: 4008,
  /** The link broke the protocol's rules (e.g. no Hello in time after the upgrade). */
  policyViolation: 1008,
} as const;

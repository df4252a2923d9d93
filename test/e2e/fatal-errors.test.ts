import { describe, expect, it } from 'vitest';
import { agentDirs, startAgent } from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 18.2: an unhandled rejection or an uncaught exception in the daemon is logged with its
 * stack and ends the process with a non-zero code (70) for systemd to restart it — never silently.
 * (The suite's setup fails any other test whose processes log one.)
 */
describe('posagent run: an unhandled failure', () => {
  for (const fault of ['unhandled-rejection', 'uncaught-exception'] as const) {
    it(`${fault}: logged with its stack, exit 70`, async () => {
      const dirs = agentDirs();
      // Not enrolled: the daemon serves its status and waits — enough to host the fault.
      const agent = startAgent(dirs, [], { POSAGENT_INJECT_FAULT: fault });
      agent.expectFatal = true;
      await waitFor(
        () => (/waiting for enrollment/.test(agent.output()) ? true : undefined),
        'the daemon up',
      );
      agent.child.kill('SIGUSR2');
      const { code } = await agent.exited;
      expect(code).toBe(70);
      const line = agent
        .output()
        .split('\n')
        .find((l) => /"level":60/.test(l));
      expect(line, agent.output()).toBeDefined();
      const entry = JSON.parse(line!) as { msg: string; err: { message: string; stack: string } };
      expect(entry.msg).toBe(
        fault === 'unhandled-rejection'
          ? 'unhandled promise rejection; exiting'
          : 'uncaught exception; exiting',
      );
      expect(entry.err.message).toMatch(/injected fault/);
      expect(entry.err.stack).toMatch(/\n\s+at .*dist\/bin\//);
    });
  }
});

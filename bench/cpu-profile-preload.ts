import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

/**
 * Preloaded into a process (`NODE_OPTIONS=--import=…/cpu-profile-preload.js`; Node refuses
 * `--cpu-prof` in NODE_OPTIONS): V8's sampling profiler runs from the start, and SIGUSR2 writes
 * the profile so far to `$POSAGENT_CPU_PROFILE_DIR/cpu-<pid>.cpuprofile` (then `<name>.done`).
 * The fleet simulator profiles the restarted cloud over the storm with it.
 */
const dir = process.env.POSAGENT_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable', () => session.post('Profiler.start'));
  process.on('SIGUSR2', () => {
    session.post('Profiler.stop', (err, r) => {
      if (err) return;
      const file = join(dir, `cpu-${process.pid}.cpuprofile`);
      writeFileSync(file, JSON.stringify(r.profile));
      writeFileSync(`${file}.done`, '');
    });
  });
}

import { spawn } from 'node:child_process';

/** Runs a command line from the device settings (the reboot command, the installer) through /bin/sh. */
export function runShellCommand(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-500);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(
            new Error(`"${command}" exited with ${code ?? signal}${stderr ? `: ${stderr.trim()}` : ''}`),
          ),
    );
  });
}

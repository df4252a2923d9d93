import { readdirSync, readFileSync } from 'node:fs';

/** What a process costs, from /proc: the bench and the fleet simulator read the same way. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  // Fields after "comm)": state is [0], utime [11], stime [12], in clock ticks (USER_HZ, 100 on Linux).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export const mb = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

/**
 * CPU seconds of a process and its children (PostgreSQL: the postmaster and its backends): the
 * live children's own, plus what the process has collected of its ended children (cutime,
 * cstime), so a backend that ends inside a window does not take its seconds with it.
 */
export function cpuSecondsOfTree(pid: number): number {
  const own = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  let total = (Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])) / 100;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      // After "comm)": ppid is [1]; a child's own ended children count in its cutime/cstime.
      if (Number(fields[1]) === pid)
        total += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
    } catch {
      // Gone between the listing and the read.
    }
  }
  return total;
}

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
  const fields = statFields(pid);
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export const mb = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

/** The direct children of a process, from /proc (one gone between the listing and the read is left out). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // After "comm)": ppid is [1].
      if (Number(statFields(Number(entry))[1]) === pid) out.push(Number(entry));
    } catch {
      // Gone.
    }
  }
  return out;
}

function statFields(pid: number): string[] {
  return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
}

/**
 * CPU seconds of a process and its children (PostgreSQL: the postmaster and its backends): each
 * one's own, plus what it collected of its ended children (cutime, cstime), so a backend that
 * ends inside a window does not take its seconds with it.
 */
export function cpuSecondsOfTree(pid: number): number {
  const withEnded = (p: number) => {
    const f = statFields(p);
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  };
  return [pid, ...childrenOf(pid)].reduce((sum, p) => {
    try {
      return sum + withEnded(p);
    } catch {
      return sum; // ended between the listing and the read: counted in the parent's cutime next time
    }
  }, 0);
}

/** Proportional set size of a process and its children: shared memory split among them, not counted in each. */
export function pssBytesOfTree(pid: number): number {
  const pss = (p: number) => {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      return Number(m?.[1] ?? 0) * 1024;
    } catch {
      return 0;
    }
  };
  return [pid, ...childrenOf(pid)].reduce((sum, p) => sum + pss(p), 0);
}

/**
 * The kernel's count of connections dropped because a listen queue was full (TcpExt
 * ListenOverflows in /proc/net/netstat): machine-wide, so read before and after a phase.
 */
export function listenOverflows(): number {
  const rows = readFileSync('/proc/net/netstat', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('TcpExt:'))
    .map((l) => l.trim().split(/\s+/));
  const at = rows[0]?.indexOf('ListenOverflows') ?? -1;
  return at > 0 ? Number(rows[1]?.[at] ?? 0) : 0;
}

/**
 * Where a process's resident memory is, from /proc/PID/smaps, in bytes: `heap` is the brk heap
 * (malloc's main arena: SQLite's page cache, OpenSSL, Node's C++ objects), `anon` the other
 * anonymous mappings (V8's heap pages, large mallocs, thread stacks), `file` pages of mapped files
 * (the node binary, better_sqlite3.node, the store's -shm index), clean and shared with any
 * process that maps them.
 */
export function rssBreakdown(pid: number): { heap: number; anon: number; file: number } {
  const out = { heap: 0, anon: 0, file: 0 };
  let kind: keyof typeof out = 'anon';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (mapping) {
      const [, inode, name] = mapping;
      kind = name === '[heap]' ? 'heap' : inode !== '0' ? 'file' : 'anon';
      continue;
    }
    if (line.startsWith('Rss:')) out[kind] += Number(line.split(/\s+/)[1]) * 1024;
  }
  return out;
}

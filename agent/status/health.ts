import { readdir, readFile, statfs } from 'node:fs/promises';
import { freemem, totalmem, uptime } from 'node:os';
import { join } from 'node:path';
import type { Heartbeat } from '../../protocol/messages.js';

/**
 * The terminal's health, collected at heartbeat time (never continuously), from node:os and
 * Linux sysfs. Battery and temperature are read straight from /sys/class/{power_supply,thermal}:
 * loading systeminformation for two files cost the idle daemon ~10 MB RSS (see the README's
 * performance table); it stays for enrollment and diagnostics, where its breadth is worth it.
 */
export type HealthSample = Omit<Heartbeat, 'sentAt' | 'queueDepth' | 'queueOldestAt' | 'linkRttMs'>;

export class HealthCollector {
  constructor(
    private readonly diskPath: string,
    /** `/sys` on a device; a fixture tree in tests. */
    private readonly sysRoot = '/sys',
  ) {}

  async collect(): Promise<HealthSample> {
    const [disk, battery, temperatureC] = await Promise.all([
      this.disk(),
      this.battery(),
      this.temperature(),
    ]);
    return {
      uptimeSec: Math.floor(uptime()),
      battery,
      disk,
      memory: { freeBytes: freemem(), totalBytes: totalmem(), agentRssBytes: process.memoryUsage.rss() },
      temperatureC,
    };
  }

  private async disk(): Promise<Heartbeat['disk']> {
    try {
      const s = await statfs(this.diskPath);
      return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
    } catch {
      return { freeBytes: 0, totalBytes: 0 };
    }
  }

  /** The first power supply of type Battery: capacity (%) and whether it is charging. */
  private async battery(): Promise<Heartbeat['battery']> {
    const dir = join(this.sysRoot, 'class/power_supply');
    for (const name of await list(dir)) {
      if ((await readText(join(dir, name, 'type'))) !== 'Battery') continue;
      const capacity = Number(await readText(join(dir, name, 'capacity')));
      if (!Number.isFinite(capacity)) continue;
      const status = await readText(join(dir, name, 'status'));
      return {
        level: Math.max(0, Math.min(100, Math.round(capacity))),
        charging: status === 'Charging' || status === 'Full',
      };
    }
    return null;
  }

  /** The hottest thermal zone, °C (sysfs reports millidegrees). */
  private async temperature(): Promise<number | null> {
    const dir = join(this.sysRoot, 'class/thermal');
    let max: number | null = null;
    for (const name of await list(dir)) {
      if (!name.startsWith('thermal_zone')) continue;
      const milli = Number(await readText(join(dir, name, 'temp')));
      if (!Number.isFinite(milli)) continue;
      const c = Math.round(milli / 100) / 10;
      if (c > -100 && c < 200 && (max === null || c > max)) max = c;
    }
    return max;
  }
}

async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

async function readText(file: string): Promise<string | null> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    return null;
  }
}

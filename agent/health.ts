import { statfs } from 'node:fs/promises';
import { freemem, totalmem, uptime } from 'node:os';
import type { Heartbeat } from '../protocol/messages.js';

/**
 * The terminal's health, collected at heartbeat time (never continuously). systeminformation is
 * loaded on first use, and only for what node:os cannot tell (battery, temperature).
 */
export type HealthSample = Omit<Heartbeat, 'sentAt' | 'queueDepth' | 'linkRttMs'>;

type SystemInformation = typeof import('systeminformation');

export class HealthCollector {
  private si: Promise<SystemInformation> | undefined;

  constructor(private readonly diskPath: string) {}

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

  private systemInformation(): Promise<SystemInformation> {
    this.si ??= import('systeminformation').then((m) => (m as { default?: SystemInformation }).default ?? m);
    return this.si;
  }

  private async disk(): Promise<Heartbeat['disk']> {
    try {
      const s = await statfs(this.diskPath);
      return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
    } catch {
      return { freeBytes: 0, totalBytes: 0 };
    }
  }

  private async battery(): Promise<Heartbeat['battery']> {
    try {
      const b = await (await this.systemInformation()).battery();
      if (!b.hasBattery) return null;
      return { level: Math.max(0, Math.min(100, Math.round(b.percent))), charging: b.isCharging };
    } catch {
      return null;
    }
  }

  private async temperature(): Promise<number | null> {
    try {
      const t = await (await this.systemInformation()).cpuTemperature();
      return typeof t.main === 'number' && Number.isFinite(t.main) ? t.main : null;
    } catch {
      return null;
    }
  }
}

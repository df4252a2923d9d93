import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HealthCollector } from '../../../agent/status/health.js';

/** A sysfs tree on disk, as a terminal's kernel would expose it. */
function sysfs(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'posagent-sysfs-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), `${content}\n`);
  }
  return root;
}

describe('health from sysfs', () => {
  it('reads the battery and the hottest thermal zone', async () => {
    const root = sysfs({
      'class/power_supply/AC/type': 'Mains',
      'class/power_supply/BAT0/type': 'Battery',
      'class/power_supply/BAT0/capacity': '87',
      'class/power_supply/BAT0/status': 'Discharging',
      'class/thermal/thermal_zone0/temp': '41500',
      'class/thermal/thermal_zone1/temp': '52125',
      'class/thermal/cooling_device0/cur_state': '1',
    });
    const h = await new HealthCollector(root, root).collect();
    expect(h.battery).toEqual({ level: 87, charging: false });
    expect(h.temperatureC).toBe(52.1);
    expect(h.disk.totalBytes).toBeGreaterThan(0);
    expect(h.memory.agentRssBytes).toBeGreaterThan(0);
    expect(h.uptimeSec).toBeGreaterThan(0);
  });

  it('reports null for a mains-powered device without thermal zones (VINR: batteryLevel null)', async () => {
    const root = sysfs({ 'class/power_supply/AC/type': 'Mains', 'class/power_supply/AC/online': '1' });
    const h = await new HealthCollector(root, root).collect();
    expect(h.battery).toBeNull();
    expect(h.temperatureC).toBeNull();
  });

  it('treats a charging or full battery as charging, and ignores garbage', async () => {
    const root = sysfs({
      'class/power_supply/BAT0/type': 'Battery',
      'class/power_supply/BAT0/capacity': '100',
      'class/power_supply/BAT0/status': 'Full',
      'class/thermal/thermal_zone0/temp': 'n/a',
    });
    const h = await new HealthCollector(root, root).collect();
    expect(h.battery).toEqual({ level: 100, charging: true });
    expect(h.temperatureC).toBeNull();
  });
});

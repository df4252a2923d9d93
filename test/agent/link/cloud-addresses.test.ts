import { describe, expect, it } from 'vitest';
import {
  CloudAddresses,
  cloudUrlProblem,
  cloudUrlsOf,
  firstCloudUrl,
} from '../../../agent/link/cloud-addresses.js';
import { AGENT_DEFAULTS, resolveDeviceSettings, SettingsError } from '../../../agent/settings.js';

const THREE = ['https://gw1.example:8443', 'https://gw2.example:8443', 'https://gw3.example:8443'];

describe('the cloud addresses (issue 22: agents with several cloud addresses)', () => {
  it('cloudUrls wins over cloudUrl, which wins over the address recorded at enrollment', () => {
    const enrolled = 'https://enrolled.example';
    expect(cloudUrlsOf({ cloudUrl: '', cloudUrls: '' }, enrolled)).toEqual([enrolled]);
    expect(cloudUrlsOf({ cloudUrl: 'https://moved.example', cloudUrls: '' }, enrolled)).toEqual([
      'https://moved.example',
    ]);
    expect(
      cloudUrlsOf({ cloudUrl: 'https://moved.example', cloudUrls: ` ${THREE.join(' , ')} ,` }, enrolled),
    ).toEqual(THREE);
  });

  it('each terminal starts at its own place, the same on every start, and a fleet spreads over the list', () => {
    const starts = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const id = `term_${i}`;
      const first = new CloudAddresses(THREE, id).current();
      expect(new CloudAddresses(THREE, id).current()).toBe(first);
      starts.set(first, (starts.get(first) ?? 0) + 1);
    }
    expect([...starts.keys()].sort()).toEqual(THREE);
    for (const n of starts.values()) expect(n).toBeGreaterThan(60); // ~100 each
    expect(
      firstCloudUrl({ cloudUrl: '', cloudUrls: THREE.join(',') }, { cloudUrl: '', terminalId: 'term_7' }),
    ).toBe(new CloudAddresses(THREE, 'term_7').current());
  });

  it('a failed or lost link moves to the next address, round the list; a stale failure moves nothing', () => {
    const a = new CloudAddresses(THREE, 'term_x');
    const seen = [a.current()];
    for (let i = 0; i < 3; i++) {
      a.failed(a.current());
      seen.push(a.current());
    }
    expect(new Set(seen.slice(0, 3)).size).toBe(3);
    expect(seen[3]).toBe(seen[0]);
    const now = a.current();
    a.failed(THREE.find((u) => u !== now) as string); // an attempt to another address, finished late
    expect(a.current()).toBe(now);
    const one = new CloudAddresses(['https://only.example'], 'term_x');
    one.failed('https://only.example');
    expect(one.current()).toBe('https://only.example');
  });

  it('a cloudUrls entry that is not an https URL is refused by name, before anything starts', () => {
    expect(cloudUrlProblem('https://gw1.example:8443')).toBeNull();
    expect(cloudUrlProblem('gw1.example')).toBe('"gw1.example" is not a URL');
    expect(cloudUrlProblem('ftp://gw1.example')).toBe('"ftp://gw1.example" must start with https://');
    expect(cloudUrlProblem('https://u:p@gw1.example')).toMatch(/must not carry a user name or password/);
    const resolve = (cloudUrls: string) => () =>
      resolveDeviceSettings({ flags: {}, env: {}, file: { cloudUrls } });
    expect(resolve(`${THREE[0]},gw2.example`)).toThrow(SettingsError);
    expect(resolve(`${THREE[0]},gw2.example`)).toThrow('cloudUrls: "gw2.example" is not a URL');
    expect(resolve(THREE.join(','))().settings.cloudUrls).toBe(THREE.join(','));
    expect(AGENT_DEFAULTS.cloudUrls).toBe('');
  });
});

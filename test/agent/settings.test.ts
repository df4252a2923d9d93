import { describe, expect, it } from 'vitest';
import {
  AGENT_DEFAULTS,
  envName,
  resolveDeviceSettings,
  resolvePaths,
  SettingsError,
} from '../../agent/settings.js';

describe('device settings', () => {
  it('takes flags over env over file over defaults, and says where each came from', () => {
    const { settings, sources } = resolveDeviceSettings({
      flags: { logLevel: 'debug' },
      env: { POSAGENT_LOG_LEVEL: 'warn', POSAGENT_RECONNECT_BASE_MS: '250', POSAGENT_AUTO_ENROLL: 'true' },
      file: { logLevel: 'error', reconnectBaseMs: 999, rebootCommand: '/usr/bin/fake-reboot' },
    });
    expect(settings.logLevel).toBe('debug');
    expect(sources.logLevel).toBe('flag');
    expect(settings.reconnectBaseMs).toBe(250);
    expect(sources.reconnectBaseMs).toBe('env');
    expect(settings.autoEnroll).toBe(true);
    expect(settings.rebootCommand).toBe('/usr/bin/fake-reboot');
    expect(sources.rebootCommand).toBe('file');
    expect(settings.reconnectCapMs).toBe(AGENT_DEFAULTS.reconnectCapMs);
    expect(sources.reconnectCapMs).toBe('default');
  });

  it('names the offending key', () => {
    expect(() =>
      resolveDeviceSettings({ flags: {}, env: { POSAGENT_RECONNECT_BASE_MS: 'soon' }, file: null }),
    ).toThrow(/POSAGENT_RECONNECT_BASE_MS must be a non-negative number/);
    expect(() => resolveDeviceSettings({ flags: {}, env: {}, file: { rebootCommand: 5 } })).toThrow(
      SettingsError,
    );
    expect(() => resolveDeviceSettings({ flags: {}, env: {}, file: { rebootComand: 'x' } })).toThrow(
      /unknown key\(s\) in settings file: rebootComand/,
    );
    expect(() =>
      resolveDeviceSettings({ flags: {}, env: { POSAGENT_AUTO_ENROLL: 'maybe' }, file: null }),
    ).toThrow(/true or false/);
  });

  it('maps camelCase keys to POSAGENT_* names', () => {
    expect(envName('restartSpreadMs')).toBe('POSAGENT_RESTART_SPREAD_MS');
  });

  it('resolves dirs: flag, POSAGENT_*, systemd, default', () => {
    expect(resolvePaths({ stateDir: '/a' }, { POSAGENT_STATE_DIR: '/b' }).stateDir).toBe('/a');
    expect(resolvePaths({}, { POSAGENT_STATE_DIR: '/b', STATE_DIRECTORY: '/c' }).stateDir).toBe('/b');
    expect(resolvePaths({}, { STATE_DIRECTORY: '/c:/d' }).stateDir).toBe('/c');
    const d = resolvePaths({}, {});
    expect(d).toEqual({
      stateDir: '/var/lib/posagent',
      runtimeDir: '/run/posagent',
      socketPath: '/run/posagent/api.sock',
      dbFile: '/var/lib/posagent/agent.db',
    });
    expect(resolvePaths({}, { RUNTIME_DIRECTORY: '/run/x' }).socketPath).toBe('/run/x/api.sock');
  });
});

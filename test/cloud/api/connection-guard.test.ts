import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  derivedMaxConnections,
  openFileLimit,
  serverOptions,
  sourceOf,
} from '../../../cloud/api/connection-guard.js';
import { parseRange } from '../../../cloud/api/file-transfer.js';
import { tempDir } from '../../support/processes.js';

describe('connection guard', () => {
  it.each([
    ['127.0.0.2', '127.0.0.2'],
    ['::ffff:10.0.0.7', '10.0.0.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002::1', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    [undefined, 'unknown'],
  ])('the source of %s is %s (IPv6 by /64)', (address, source) => {
    expect(sourceOf(address)).toBe(source);
  });

  it('the total cap stays below the descriptor limit (half of what is left past a reserve of 128)', () => {
    expect(derivedMaxConnections(1024)).toBe(448);
    expect(derivedMaxConnections(20_000)).toBe(9936);
    expect(derivedMaxConnections(1_048_576)).toBe(10_000);
    expect(derivedMaxConnections(100)).toBe(64);
    expect(derivedMaxConnections(null)).toBe(4096);
  });

  it('reads the soft open-file limit from /proc', () => {
    const f = join(tempDir('limits'), 'limits');
    writeFileSync(
      f,
      'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n',
    );
    expect(openFileLimit(f)).toBe(1024);
    expect(openFileLimit(join(tempDir('limits'), 'none'))).toBeNull();
    expect(openFileLimit()).toBeGreaterThan(0);
  });

  it('checks headers and request timeouts at least every second', () => {
    expect(
      serverOptions({
        maxConnections: 0,
        maxConnectionsPerSource: 0,
        handshakeTimeoutMs: 10_000,
        headersTimeoutMs: 10_000,
        requestTimeoutMs: 30_000,
        keepAliveTimeoutMs: 5000,
        idleTimeoutMs: 30_000,
      }),
    ).toEqual({
      handshakeTimeout: 10_000,
      headersTimeout: 10_000,
      requestTimeout: 0,
      keepAliveTimeout: 5000,
      connectionsCheckingInterval: 1000,
    });
  });
});

describe('Range', () => {
  it.each([
    [undefined, null],
    ['bytes=0-', { start: 0, end: 999 }],
    ['bytes=100-', { start: 100, end: 999 }],
    ['bytes=10-19', { start: 10, end: 19 }],
    ['bytes=990-5000', { start: 990, end: 999 }],
    ['bytes=-10', { start: 990, end: 999 }],
    ['bytes=-5000', { start: 0, end: 999 }],
    ['bytes=1000-', 'unsatisfiable'],
    ['bytes=-0', 'unsatisfiable'],
    ['bytes=20-10', null],
    ['bytes=0-1,5-6', null],
    ['items=0-1', null],
    ['bytes=-', null],
  ])('%s of 1000 bytes → %j', (header, expected) => {
    expect(parseRange(header, 1000)).toEqual(expected);
  });
});

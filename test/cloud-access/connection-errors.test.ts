import { describe, expect, it } from 'vitest';
import { proxyFor, proxySettings } from '../../cloud-access/proxy.js';
import { explainConnectionError } from '../../cloud-access/tls-errors.js';

const CLOUD = 'https://cloud.example:8443';
const err = (code: string, message = code) => Object.assign(new Error(message), { code });

/** How the device explains a failed connection and picks its path to the cloud (pure parts). */
describe('cloud access', () => {
  it('names the cause of a failed connection with a stable code, and whether a retry can help', () => {
    expect(explainConnectionError(err('SELF_SIGNED_CERT_IN_CHAIN'), CLOUD)).toMatchObject({
      code: 'cloud_untrusted',
      permanent: true,
    });
    expect(explainConnectionError(err('CERT_NOT_YET_VALID'), CLOUD)).toMatchObject({
      code: 'clock_wrong',
      permanent: false,
    });
    expect(explainConnectionError(err('ERR_TLS_CERT_ALTNAME_INVALID'), CLOUD)).toMatchObject({
      code: 'hostname_mismatch',
      permanent: true,
    });
    expect(explainConnectionError(err('ECONNREFUSED'), CLOUD)).toEqual({
      code: 'unreachable',
      message: `cannot reach the cloud at ${CLOUD} (ECONNREFUSED)`,
      permanent: false,
    });
    expect(explainConnectionError(err('PROXY_INVALID', 'bad proxy'), CLOUD)).toMatchObject({
      code: 'proxy_invalid',
      permanent: true,
    });
    expect(explainConnectionError(new Error('socket hang up'), CLOUD).code).toBe('connection_failed');
  });

  it('takes the device setting over HTTPS_PROXY / NO_PROXY, and NO_PROXY exempts hosts, suffixes and ports', () => {
    const p = proxySettings(
      {},
      { HTTPS_PROXY: 'proxy.store:3128', no_proxy: '.internal, direct.example:8443' },
    );
    expect(p).toEqual({ httpsProxy: 'proxy.store:3128', noProxy: '.internal, direct.example:8443' });
    expect(proxySettings({ httpsProxy: 'http://mine:1' }, { HTTPS_PROXY: 'x:2' }).httpsProxy).toBe(
      'http://mine:1',
    );
    expect(proxyFor(new URL(CLOUD), p)?.toString()).toBe('http://proxy.store:3128/');
    expect(proxyFor(new URL('https://a.internal'), p)).toBeNull();
    expect(proxyFor(new URL('https://direct.example:8443'), p)).toBeNull();
    expect(proxyFor(new URL('https://direct.example'), p)).not.toBeNull();
    expect(proxyFor(new URL(CLOUD), { httpsProxy: '', noProxy: '' })).toBeNull();
  });
});

import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { FleetCa, newPrivateKeyPem } from '../../cloud/identity/fleet-ca.js';
import { describeSkew, explainWithClock } from '../../cloud-access/cloud-time.js';
import { proxyFor, proxySettings } from '../../cloud-access/proxy.js';
import { renewalDue } from '../../enroll/renewal.js';
import { formatQrPayload, parseQrPayload } from '../../protocol/enrollment.js';

describe('QR payload', () => {
  const ca = 'ab'.repeat(32);
  it('round-trips and accepts a colon-separated upper-case fingerprint', () => {
    const p = formatQrPayload({ cloud: 'https://fleet.example:8443', code: 'ABCD-EFGH', ca });
    expect(parseQrPayload(p)).toEqual({ cloud: 'https://fleet.example:8443', code: 'ABCD-EFGH', ca });
    const colons = p.replace(ca, ca.toUpperCase().match(/../g)!.join(':'));
    expect(parseQrPayload(colons).ca).toBe(ca);
  });
  it.each([
    ['not a URI', 'hello', /not a posagent:\/\/enroll URI/],
    ['another scheme', `https://x/enroll?code=A&ca=${ca}`, /not a posagent:\/\/enroll URI/],
    ['http cloud', `posagent://enroll?cloud=http://x&code=A&ca=${ca}`, /no https cloud URL/],
    ['no code', `posagent://enroll?cloud=https://x&ca=${ca}`, /no enrollment code/],
    ['short fingerprint', 'posagent://enroll?cloud=https://x&code=A&ca=abcd', /no SHA-256 CA fingerprint/],
  ])('refuses %s', (_name, text, why) => {
    expect(() => parseQrPayload(text)).toThrow(why);
  });
});

describe('proxy selection', () => {
  const p = { httpsProxy: 'http://proxy.store:3128', noProxy: 'localhost, .internal, 10.0.0.5:8443' };
  it.each([
    ['https://fleet.example.com/v1', 'http://proxy.store:3128/'],
    ['https://localhost:8443/', null],
    ['https://api.internal/', null],
    ['https://internal/', null],
    ['https://10.0.0.5:8443/', null],
    ['https://10.0.0.5:9443/', 'http://proxy.store:3128/'],
  ])('%s → %s', (target, expected) => {
    expect(proxyFor(new URL(target), p)?.toString() ?? null).toBe(expected);
  });
  it('no proxy, or NO_PROXY=*, means direct; the device setting wins over HTTPS_PROXY', () => {
    expect(proxyFor(new URL('https://x/'), { httpsProxy: '', noProxy: '' })).toBeNull();
    expect(proxyFor(new URL('https://x/'), { httpsProxy: 'http://p:1', noProxy: '*' })).toBeNull();
    expect(proxySettings({ httpsProxy: 'http://dev:1' }, { HTTPS_PROXY: 'http://env:2' }).httpsProxy).toBe(
      'http://dev:1',
    );
    expect(proxySettings({}, { https_proxy: 'http://env:2', no_proxy: 'a' })).toEqual({
      httpsProxy: 'http://env:2',
      noProxy: 'a',
    });
  });
});

describe('renewal is due', () => {
  const day = 86_400_000;
  const cert = (days: number, start = 0) => ({
    notBefore: new Date(start).toISOString(),
    notAfter: new Date(start + days * day).toISOString(),
  });
  it.each([
    ['90-day cert, 61 days left', cert(90), 29 * day, 30, false],
    ['90-day cert, 29 days left', cert(90), 61 * day, 30, true],
    ['365-day cert, 200 days left (more than a third)', cert(365), 165 * day, 30, false],
    ['365-day cert, 100 days left (less than a third)', cert(365), 265 * day, 30, true],
    ['1-day cert, fresh, with the 30-day rule (capped at half its life)', cert(1), 0, 30, false],
    ['1-day cert, 11 h left, with the 30-day rule', cert(1), 13 * 3_600_000, 30, true],
    ['10-day cert, fresh, with the 30-day rule (issue: renewed on every link)', cert(10), 0, 30, false],
    ['10-day cert, 6 days left', cert(10), 4 * day, 30, false],
    ['10-day cert, 4 days left (under half its life)', cert(10), 6 * day, 30, true],
    ['30-day cert, fresh, with the 30-day rule', cert(30), 0, 30, false],
    ['1-day cert, fresh, rule off', cert(1), 0, 0, false],
    ['1-day cert, 7 h left, rule off', cert(1), 17 * 3_600_000, 0, true],
  ])('%s → %s', (_n, c, now, before, due) => {
    expect(renewalDue(c, now, before)).toBe(due);
  });
});

describe('clock errors say the device time and the cloud time', () => {
  it('describes skews', () => {
    expect(describeSkew(-3 * 86_400)).toBe('3 days behind');
    expect(describeSkew(4 * 3600)).toBe('4 hours ahead');
    expect(describeSkew(-300)).toBe('5 minutes behind');
  });
  it('a clock-shaped TLS failure is explained with the Date of a real HTTPS answer', async () => {
    const { ca } = await FleetCa.create('test CA', new Date());
    const key = await newPrivateKeyPem();
    const server = createServer(
      { key, cert: ca.issueServerCertificate(key, ['127.0.0.1'], new Date()) },
      (_q, r) => r.end('{}'),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const err = Object.assign(new Error('certificate is not yet valid'), { code: 'CERT_NOT_YET_VALID' });
      const boot1970 = Date.parse('1970-01-01T00:01:00Z');
      const e = await explainWithClock(err, url, boot1970);
      expect(e.code).toBe('clock_wrong');
      expect(e.message).toMatch(
        /this device's clock is \d+ days behind: device 1970-01-01T00:01:00.000Z, cloud 20\d\d-/,
      );
      // A clock within two minutes of the cloud keeps the plain explanation.
      expect((await explainWithClock(err, url, Date.now())).message).toMatch(/not valid yet/);
    } finally {
      server.close();
    }
  });
});

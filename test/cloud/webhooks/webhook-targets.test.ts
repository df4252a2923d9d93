import { describe, expect, it } from 'vitest';
import {
  nonPublicReason,
  WebhookTargetRefused,
  WebhookTargets,
} from '../../../cloud/webhooks/webhook-targets.js';

describe('webhook target policy', () => {
  it.each([
    ['127.0.0.1', 'a loopback address'],
    ['127.9.9.9', 'a loopback address'],
    ['10.1.2.3', 'a private address'],
    ['172.31.255.255', 'a private address'],
    ['192.168.0.10', 'a private address'],
    ['169.254.169.254', 'a link-local address'],
    ['100.64.0.1', 'a shared (CGNAT) address'],
    ['0.0.0.0', 'a "this network" address'],
    ['224.0.0.251', 'a multicast address'],
    ['255.255.255.255', 'a reserved address'],
    ['::1', 'a loopback address'],
    ['::', 'the unspecified address'],
    ['::ffff:127.0.0.1', 'a loopback address'],
    ['::ffff:10.0.0.1', 'a private address'],
    // IPv4-compatible (deprecated) forms — a security review found [::127.0.0.1] accepted.
    ['::127.0.0.1', 'an IPv4-compatible address (deprecated)'],
    ['::7f00:1', 'an IPv4-compatible address (deprecated)'],
    ['fe80::1', 'a link-local address'],
    ['fd12:3456::1', 'a unique local (private) address'],
    ['2001:db8::1', 'a documentation address'],
    ['64:ff9b::a00:1', 'a NAT64 address'],
  ])('%s is %s', (address, why) => {
    expect(nonPublicReason(address)).toBe(why);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])(
    '%s is public',
    (address) => {
      expect(nonPublicReason(address)).toBeNull();
    },
  );

  it('checks every address a name resolves to, at each check (a name that later points inside is refused)', async () => {
    // DNS is what a test cannot own: a resolver that answers what the scenario needs.
    const answers: string[][] = [['93.184.216.34'], ['93.184.216.34', '10.0.0.5']];
    const t = new WebhookTargets(false, async () => answers.shift() ?? []);
    const url = new URL('https://hooks.example.com/in');
    expect(await t.check(url)).toEqual(['93.184.216.34']);
    await expect(t.check(url)).rejects.toThrow(
      new WebhookTargetRefused(
        'hooks.example.com resolves to 10.0.0.5, a private address: the cloud sends webhooks only to public addresses (start it with --allow-private-webhooks for development)',
      ),
    );
    await expect(t.check(url)).rejects.toThrow(/resolves to no address/);
  });

  it('the pinned lookup answers only the checked addresses', async () => {
    const t = new WebhookTargets(false, async () => ['93.184.216.34']);
    const lookup = t.pinnedLookup(await t.check(new URL('http://hooks.example.com/')));
    const got = await new Promise((resolve) =>
      lookup('anything.else', { all: true }, (_err, addresses) => resolve(addresses)),
    );
    expect(got).toEqual([{ address: '93.184.216.34', family: 4 }]);
  });

  it('--allow-private-webhooks lets private targets through', async () => {
    expect(await new WebhookTargets(true).check(new URL('http://127.0.0.1:9/x'))).toEqual(['127.0.0.1']);
  });
});

import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Where the cloud may send webhooks. By default only to public addresses: a webhook URL that is,
 * or resolves to, a loopback, private, link-local, shared (CGNAT), multicast, documentation or
 * otherwise reserved address is refused when the endpoint is created, and checked again at every
 * delivery against the addresses the name resolves to *then* (a name that later points inside is
 * refused, and the connection goes to the address that was checked). Redirects are never
 * followed. `--allow-private-webhooks` lifts all of this, for development on one machine.
 */
const RANGES: [string, number, 'ipv4' | 'ipv6', string][] = [
  ['0.0.0.0', 8, 'ipv4', 'a "this network" address'],
  ['10.0.0.0', 8, 'ipv4', 'a private address'],
  ['100.64.0.0', 10, 'ipv4', 'a shared (CGNAT) address'],
  ['127.0.0.0', 8, 'ipv4', 'a loopback address'],
  ['169.254.0.0', 16, 'ipv4', 'a link-local address'],
  ['172.16.0.0', 12, 'ipv4', 'a private address'],
  ['192.0.0.0', 24, 'ipv4', 'a reserved address'],
  ['192.0.2.0', 24, 'ipv4', 'a documentation address'],
  ['192.88.99.0', 24, 'ipv4', 'a reserved address'],
  ['192.168.0.0', 16, 'ipv4', 'a private address'],
  ['198.18.0.0', 15, 'ipv4', 'a benchmarking address'],
  ['198.51.100.0', 24, 'ipv4', 'a documentation address'],
  ['203.0.113.0', 24, 'ipv4', 'a documentation address'],
  ['224.0.0.0', 4, 'ipv4', 'a multicast address'],
  ['240.0.0.0', 4, 'ipv4', 'a reserved address'],
  ['::', 128, 'ipv6', 'the unspecified address'],
  ['::1', 128, 'ipv6', 'a loopback address'],
  ['::', 96, 'ipv6', 'an IPv4-compatible address (deprecated)'],
  ['64:ff9b::', 96, 'ipv6', 'a NAT64 address'],
  ['64:ff9b:1::', 48, 'ipv6', 'a NAT64 address'],
  ['100::', 64, 'ipv6', 'a discard address'],
  ['2001::', 23, 'ipv6', 'a reserved address'],
  ['2001:db8::', 32, 'ipv6', 'a documentation address'],
  ['2002::', 16, 'ipv6', 'a 6to4 address'],
  ['fc00::', 7, 'ipv6', 'a unique local (private) address'],
  ['fe80::', 10, 'ipv6', 'a link-local address'],
  ['fec0::', 10, 'ipv6', 'a site-local address'],
  ['ff00::', 8, 'ipv6', 'a multicast address'],
];

const lists = RANGES.map(([net, prefix, type, what]) => {
  const b = new BlockList();
  b.addSubnet(net, prefix, type);
  return { b, what };
});

/** Why an address may not be a webhook target, or null when it is a public address. */
export function nonPublicReason(address: string): string | null {
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged by the IPv4 address it carries.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return nonPublicReason(mapped[1]!);
  const type = isIP(address) === 6 ? 'ipv6' : isIP(address) === 4 ? 'ipv4' : null;
  if (!type) return 'not an IP address';
  for (const { b, what } of lists) if (b.check(address, type)) return what;
  return null;
}

export class WebhookTargetRefused extends Error {
  override readonly name = 'WebhookTargetRefused';
}

export type Resolver = (host: string) => Promise<string[]>;

const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) =>
    dnsLookup(host, { all: true, verbatim: true }, (err, addresses) =>
      err ? reject(err) : resolve(addresses.map((a) => a.address)),
    ),
  );

export class WebhookTargets {
  constructor(
    readonly allowPrivate: boolean,
    private readonly resolve: Resolver = systemResolver,
  ) {}

  /** The addresses a target may be reached at; throws WebhookTargetRefused naming why not. */
  async check(url: URL): Promise<string[]> {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    let addresses: string[];
    if (isIP(host)) addresses = [host];
    else {
      try {
        addresses = await this.resolve(host);
      } catch (err) {
        throw new WebhookTargetRefused(
          `${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        );
      }
      if (addresses.length === 0) throw new WebhookTargetRefused(`${host} resolves to no address`);
    }
    if (this.allowPrivate) return addresses;
    for (const a of addresses) {
      const why = nonPublicReason(a);
      if (why)
        throw new WebhookTargetRefused(
          `${url.host} ${a === host ? 'is' : `resolves to ${a},`} ${why}: the cloud sends webhooks only to public addresses (start it with --allow-private-webhooks for development)`,
        );
    }
    return addresses;
  }

  /** A `lookup` for node:http(s) that answers only with the addresses `check` accepted. */
  pinnedLookup(addresses: string[]): LookupFunction {
    return (_host, options, callback) => {
      const all = addresses.map((address) => ({ address, family: isIP(address) }));
      if ((options as { all?: boolean }).all) (callback as (e: null, a: typeof all) => void)(null, all);
      else callback(null, all[0]!.address, all[0]!.family);
    };
  }
}

import { createHash } from 'node:crypto';

/**
 * The cloud's addresses, in the order the link tries them (issue 22): `cloudUrls` in the device
 * settings (comma-separated: several gateways, for a fleet without one load-balanced name), else
 * `cloudUrl`, else the address recorded at enrollment. Each terminal starts at its own place in
 * the list (a hash of its id: the same on every start, and a fleet spreads over the gateways);
 * a link that fails or is lost moves to the next address, after the normal backoff. A name with
 * several DNS addresses needs none of this: Node tries each address of a name in turn.
 */
export function cloudUrlsOf(
  settings: { cloudUrl: string; cloudUrls: string },
  enrolledUrl: string,
): string[] {
  const listed = splitCloudUrls(settings.cloudUrls);
  if (listed.length > 0) return listed;
  return [settings.cloudUrl || enrolledUrl];
}

/** The address a terminal starts with (the CLI's own calls, when the daemon is not there to ask). */
export function firstCloudUrl(
  settings: { cloudUrl: string; cloudUrls?: string | undefined },
  identity: { cloudUrl: string; terminalId: string },
): string {
  const urls = cloudUrlsOf(
    { cloudUrl: settings.cloudUrl, cloudUrls: settings.cloudUrls ?? '' },
    identity.cloudUrl,
  );
  return new CloudAddresses(urls, identity.terminalId).current();
}

export function splitCloudUrls(value: string): string[] {
  return value
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
}

/** Why a cloud address cannot be used, or null: an http(s) URL without credentials. */
export function cloudUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `"${url}" is not a URL`;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `"${url}" must start with https://`;
  if (u.username || u.password) return `"${url}" must not carry a user name or password`;
  return null;
}

export class CloudAddresses {
  private index: number;

  constructor(
    private readonly urls: readonly string[],
    terminalId: string,
  ) {
    if (urls.length === 0) throw new Error('no cloud address');
    this.index =
      urls.length === 1 ? 0 : createHash('sha256').update(terminalId).digest().readUInt32BE(0) % urls.length;
  }

  /** The address the link uses now (and the daemon's HTTPS calls to the cloud). */
  current(): string {
    return this.urls[this.index] as string;
  }

  all(): readonly string[] {
    return this.urls;
  }

  /** The link to `url` failed or was lost: the next attempt goes to the next address. */
  failed(url: string): void {
    if (this.urls.length > 1 && this.current() === url) this.index = (this.index + 1) % this.urls.length;
  }
}

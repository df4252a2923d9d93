import { request } from 'node:https';
import type { ProxySettings } from './proxy.js';
import { agentFor } from './proxy.js';
import { type ExplainedError, explainConnectionError } from './tls-errors.js';

/**
 * The cloud's idea of the time, from the `Date` header of any answer. Read over a connection that
 * trusts nothing (it is only compared, never used to trust), to say by how much this device's
 * clock is off when TLS fails because of it.
 */
export function cloudDate(cloudUrl: string, proxy?: ProxySettings, timeoutMs = 3000): Promise<Date | null> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL('/v1/fleet-ca', cloudUrl);
    } catch {
      resolve(null);
      return;
    }
    const req = request(
      url,
      { method: 'HEAD', rejectUnauthorized: false, timeout: timeoutMs, agent: agentFor(url, proxy) },
      (res) => {
        res.resume();
        const d = res.headers.date ? new Date(res.headers.date) : null;
        resolve(d && !Number.isNaN(d.getTime()) ? d : null);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}

/** explainConnectionError, and for clock-shaped failures the device's time beside the cloud's. */
export async function explainWithClock(
  err: unknown,
  cloudUrl: string,
  nowMs: number,
  proxy?: ProxySettings,
): Promise<ExplainedError> {
  const e = explainConnectionError(err, new URL(cloudUrl).origin);
  if (e.code !== 'clock_wrong' && e.code !== 'cloud_cert_expired') return e;
  const cloud = await cloudDate(cloudUrl, proxy);
  if (!cloud) return e;
  const skewSec = Math.round((nowMs - cloud.getTime()) / 1000);
  if (Math.abs(skewSec) < 120) return e;
  return {
    code: 'clock_wrong',
    message: `this device's clock is ${describeSkew(skewSec)}: device ${new Date(nowMs).toISOString()}, cloud ${cloud.toISOString()}; set the date and time (or enable NTP), then retry`,
    permanent: false,
  };
}

export function describeSkew(skewSec: number): string {
  const abs = Math.abs(skewSec);
  const amount =
    abs >= 86_400 * 2
      ? `${Math.round(abs / 86_400)} days`
      : abs >= 7200
        ? `${Math.round(abs / 3600)} hours`
        : abs >= 120
          ? `${Math.round(abs / 60)} minutes`
          : `${abs} second${abs === 1 ? '' : 's'}`;
  return `${amount} ${skewSec < 0 ? 'behind' : 'ahead'}`;
}

import { rsaCsr } from './csrs.js';
import { type Cloud, newEnrollmentCode } from './processes.js';

/** A terminal's identity made here, without an agent: what a test drives a raw link or mTLS call with. */
export interface ApiTerminal {
  id: string;
  locationId: string;
  key: string;
  cert: string;
}

/** A location, a code, and `POST /v1/enroll` with a fresh RSA-2048 key: the cloud's own enrollment. */
export async function enrollByApi(cloud: Cloud, name = 'Till A'): Promise<ApiTerminal> {
  const { code, locationId } = await newEnrollmentCode(cloud, name);
  const { csr, keyPem } = rsaCsr();
  const r = await cloud.api<{ terminalId: string; certificate: string }>(
    'POST',
    '/v1/enroll',
    { method: 'code', code, csr },
    null,
  );
  if (r.status !== 200) throw new Error(`enrollment failed (${r.status}): ${JSON.stringify(r.body)}`);
  return { id: r.body.terminalId, locationId, key: keyPem, cert: r.body.certificate };
}

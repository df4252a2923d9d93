/**
 * The device's serial number, as the hardware reports it (DMI on x86, device tree on ARM, through
 * systeminformation). Placeholder values some firmware ships are treated as "none".
 */
const PLACEHOLDERS = new Set([
  '',
  '-',
  '0',
  'none',
  'default string',
  'to be filled by o.e.m.',
  'system serial number',
  'not specified',
  'not applicable',
  'unknown',
  '0123456789',
]);

export function usableSerial(value: string | undefined | null): string | null {
  const v = (value ?? '').trim();
  return PLACEHOLDERS.has(v.toLowerCase()) ? null : v;
}

export async function readHardwareSerial(): Promise<string | null> {
  const si = await import('systeminformation');
  const [system, board] = await Promise.all([
    si.system().catch(() => null),
    si.baseboard().catch(() => null),
  ]);
  return usableSerial(system?.serial) ?? usableSerial(board?.serial);
}

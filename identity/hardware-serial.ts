/**
 * What the hardware says the device is — serial number, model, manufacturer — as DMI (x86) or the
 * device tree (ARM) report it, through systeminformation. Placeholder values some firmware ships
 * are treated as "none".
 */
const PLACEHOLDERS = new Set([
  '',
  '-',
  '0',
  'none',
  'default string',
  'to be filled by o.e.m.',
  'system serial number',
  'system product name',
  'system manufacturer',
  'not specified',
  'not applicable',
  'unknown',
  '0123456789',
]);

export function usableSerial(value: string | undefined | null): string | null {
  const v = (value ?? '').trim();
  return PLACEHOLDERS.has(v.toLowerCase()) ? null : v.slice(0, 64);
}

export interface HardwareFacts {
  serialNumber: string | null;
  model: string | null;
  manufacturer: string | null;
}

type SystemInformation = typeof import('systeminformation');

/**
 * systeminformation is CommonJS: Node's ESM interop puts its functions on the namespace, esbuild's
 * bundle only on `default`. Take whichever holds them (a bundle once shipped `si.system is not a function`).
 */
export function systemInformationOf(
  mod: SystemInformation | { default: SystemInformation },
): SystemInformation {
  const m = mod as SystemInformation & { default?: SystemInformation };
  if (typeof m.system === 'function') return m;
  if (m.default && typeof m.default.system === 'function') return m.default;
  throw new Error('systeminformation did not load (no system() in the module)');
}

export async function readHardwareFacts(): Promise<HardwareFacts> {
  const si = systemInformationOf(await import('systeminformation'));
  const [system, board] = await Promise.all([
    si.system().catch(() => null),
    si.baseboard().catch(() => null),
  ]);
  return {
    serialNumber: usableSerial(system?.serial) ?? usableSerial(board?.serial),
    model: usableSerial(system?.model) ?? usableSerial(board?.model),
    manufacturer: usableSerial(system?.manufacturer) ?? usableSerial(board?.manufacturer),
  };
}

export async function readHardwareSerial(): Promise<string | null> {
  return (await readHardwareFacts()).serialNumber;
}

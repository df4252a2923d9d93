import type { LocationRow, NewTerminal } from '../../../cloud/store/store-types.js';

/** A store row (a location) for store tests: active, in the default organization. */
export const shopRow = (id: string, organizationId = 'org_default'): LocationRow => ({
  id,
  name: `Shop ${id}`,
  createdAt: 1,
  organizationId,
  active: true,
  timezone: null,
  address: null,
});

/** A terminal row for store tests, certificate fields derived from its id. */
export const terminalRow = (id: string, locationId = 'loc_1'): NewTerminal => ({
  id,
  name: `Till ${id}`,
  locationId,
  model: null,
  serialNumber: null,
  softwareVersion: '1.0.0',
  createdAt: 1000,
  certFingerprint: `fp-${id}`,
  certSerial: `sn-${id}`,
  certNotAfter: 9_000_000,
});

import type Database from 'better-sqlite3';

/**
 * Zero-touch trust in the cloud's store: the manufacturer CAs an operator registered, and what
 * each pre-registration trusts to prove its serial (the device's factory public key, or one of
 * those CAs). A pre-registration with neither is serial-only: accepted only by a cloud started
 * with --allow-serial-only-preregistration.
 */
export const ATTESTATION_MIGRATION = `
  CREATE TABLE manufacturer_cas (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    certificate TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  ALTER TABLE preregistrations ADD COLUMN device_public_key TEXT;
  ALTER TABLE preregistrations ADD COLUMN manufacturer_ca_id TEXT REFERENCES manufacturer_cas(id);
`;

export interface ManufacturerCaRow {
  id: string;
  name: string;
  certificate: string;
  fingerprint: string;
  createdAt: number;
}

export interface PreregistrationTrust {
  /** SPKI PEM of the factory key, when the pre-registration names it. */
  devicePublicKey: string | null;
  manufacturerCaId: string | null;
}

const CA_COLUMNS = 'id, name, certificate, fingerprint, created_at AS createdAt';

export class AttestationTable {
  constructor(private readonly db: Database.Database) {}

  insertManufacturerCa(row: ManufacturerCaRow): boolean {
    return (
      this.db
        .prepare(
          `INSERT OR IGNORE INTO manufacturer_cas (id, name, certificate, fingerprint, created_at)
           VALUES (@id, @name, @certificate, @fingerprint, @createdAt)`,
        )
        .run(row).changes === 1
    );
  }
  getManufacturerCa(id: string): ManufacturerCaRow | undefined {
    return this.db.prepare(`SELECT ${CA_COLUMNS} FROM manufacturer_cas WHERE id = ?`).get(id) as
      | ManufacturerCaRow
      | undefined;
  }
  manufacturerCaByFingerprint(fingerprint: string): ManufacturerCaRow | undefined {
    return this.db
      .prepare(`SELECT ${CA_COLUMNS} FROM manufacturer_cas WHERE fingerprint = ?`)
      .get(fingerprint) as ManufacturerCaRow | undefined;
  }
  listManufacturerCas(): ManufacturerCaRow[] {
    return this.db
      .prepare(`SELECT ${CA_COLUMNS} FROM manufacturer_cas ORDER BY created_at, id`)
      .all() as ManufacturerCaRow[];
  }

  setTrust(serialNumber: string, trust: PreregistrationTrust): void {
    this.db
      .prepare(
        'UPDATE preregistrations SET device_public_key = ?, manufacturer_ca_id = ? WHERE serial_number = ?',
      )
      .run(trust.devicePublicKey, trust.manufacturerCaId, serialNumber);
  }
  trustOf(serialNumber: string): PreregistrationTrust | undefined {
    return this.db
      .prepare(
        'SELECT device_public_key AS devicePublicKey, manufacturer_ca_id AS manufacturerCaId FROM preregistrations WHERE serial_number = ?',
      )
      .get(serialNumber) as PreregistrationTrust | undefined;
  }
}

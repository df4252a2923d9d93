import type {
  AttestationStore,
  EnrollmentCodeRow,
  EnrollmentLimitStore,
  EnrollmentStore,
  Immediate,
  ManufacturerCaRow,
  Page,
  PairingRow,
  PreregistrationRow,
  PreregistrationTrust,
} from '../store-types.js';
import { type Db, prepareAll } from './statements.js';

const CODE_COLUMNS = `code, location_id AS locationId, terminal_name AS terminalName, created_at AS createdAt,
  expires_at AS expiresAt, used_at AS usedAt, terminal_id AS terminalId, replaces, reprovisions,
  revoked_at AS revokedAt`;
const PREREG_COLUMNS = `serial_number AS serialNumber, location_id AS locationId, name, created_at AS createdAt,
  claimed_at AS claimedAt, terminal_id AS terminalId, refused_claims AS refusedClaims`;
const PAIRING_COLUMNS = `id, secret_hash AS secretHash, activation_code AS activationCode, csr, serial_number AS serialNumber,
  model, software_version AS softwareVersion, created_at AS createdAt, expires_at AS expiresAt,
  activated_at AS activatedAt, terminal_id AS terminalId, enrollment`;

/** Enrollment codes, pre-registrations and pairings. */
export class SqliteEnrollment implements Immediate<EnrollmentStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      insertCode: `INSERT INTO enrollment_codes (code, location_id, terminal_name, created_at, expires_at, replaces,
        reprovisions) VALUES (@code, @locationId, @terminalName, @createdAt, @expiresAt, @replaces, @reprovisions)`,
      getCode: `SELECT ${CODE_COLUMNS} FROM enrollment_codes WHERE code = @code`,
      listCodes: `SELECT ${CODE_COLUMNS} FROM enrollment_codes
        WHERE (@locationId IS NULL OR location_id = @locationId)
          AND (@after IS NULL OR (created_at, code) < (SELECT created_at, code FROM enrollment_codes WHERE code = @after))
        ORDER BY created_at DESC, code DESC LIMIT @limit`,
      revokeCode: `UPDATE enrollment_codes SET revoked_at = @at
        WHERE code = @code AND used_at IS NULL AND revoked_at IS NULL`,
      useCode: `UPDATE enrollment_codes SET used_at = @at, terminal_id = @terminalId
        WHERE code = @code AND used_at IS NULL AND revoked_at IS NULL`,
      insertPrereg: `INSERT OR IGNORE INTO preregistrations (serial_number, location_id, name, created_at)
        VALUES (@serialNumber, @locationId, @name, @createdAt)`,
      getPrereg: `SELECT ${PREREG_COLUMNS} FROM preregistrations WHERE serial_number = @serial`,
      listPreregs: `SELECT ${PREREG_COLUMNS} FROM preregistrations ORDER BY created_at`,
      refusedClaim:
        'UPDATE preregistrations SET refused_claims = refused_claims + 1 WHERE serial_number = @serial',
      claimSerial: `UPDATE preregistrations SET claimed_at = @at, terminal_id = @terminalId
        WHERE serial_number = @serial AND claimed_at IS NULL`,
      insertPairing: `INSERT INTO pairings (id, secret_hash, activation_code, csr, serial_number, model, software_version,
        created_at, expires_at, source) VALUES (@id, @secretHash, @activationCode, @csr, @serialNumber, @model,
        @softwareVersion, @createdAt, @expiresAt, @source)`,
      getPairing: `SELECT ${PAIRING_COLUMNS} FROM pairings WHERE id = @id`,
      pairingByCode: `SELECT ${PAIRING_COLUMNS} FROM pairings WHERE activation_code = @code`,
      activate: `UPDATE pairings SET activated_at = @at, terminal_id = @terminalId, enrollment = @enrollment
        WHERE id = @id AND activated_at IS NULL`,
    });
  }
  insertCode(
    row: Omit<EnrollmentCodeRow, 'usedAt' | 'terminalId' | 'reprovisions' | 'revokedAt'> & {
      reprovisions?: string | null;
    },
  ): void {
    this.s.insertCode.run({ ...row, reprovisions: row.reprovisions ?? null });
  }
  getCode(code: string): EnrollmentCodeRow | undefined {
    return this.s.getCode.get({ code }) as EnrollmentCodeRow | undefined;
  }
  listCodes(locationId: string | null, page: Page): EnrollmentCodeRow[] {
    return this.s.listCodes.all({ locationId, after: page.after, limit: page.limit }) as EnrollmentCodeRow[];
  }
  revokeCode(code: string, at: number): boolean {
    return this.s.revokeCode.run({ code, at }).changes === 1;
  }
  useCode(code: string, terminalId: string, at: number): boolean {
    return this.s.useCode.run({ code, terminalId, at }).changes === 1;
  }
  insertPreregistration(
    row: Omit<PreregistrationRow, 'claimedAt' | 'terminalId' | 'refusedClaims'>,
  ): boolean {
    return this.s.insertPrereg.run(row).changes === 1;
  }
  getPreregistration(serial: string): PreregistrationRow | undefined {
    return this.s.getPrereg.get({ serial }) as PreregistrationRow | undefined;
  }
  listPreregistrations(): PreregistrationRow[] {
    return this.s.listPreregs.all() as PreregistrationRow[];
  }
  countRefusedClaim(serial: string): void {
    this.s.refusedClaim.run({ serial });
  }
  claimSerial(serial: string, terminalId: string, at: number): boolean {
    return this.s.claimSerial.run({ serial, terminalId, at }).changes === 1;
  }
  insertPairing(
    row: Omit<PairingRow, 'activatedAt' | 'terminalId' | 'enrollment'> & { source: string },
  ): void {
    this.s.insertPairing.run(row);
  }
  getPairing(id: string): PairingRow | undefined {
    return this.s.getPairing.get({ id }) as PairingRow | undefined;
  }
  getPairingByCode(code: string): PairingRow | undefined {
    return this.s.pairingByCode.get({ code }) as PairingRow | undefined;
  }
  activatePairing(id: string, terminalId: string, enrollment: string, at: number): boolean {
    return this.s.activate.run({ id, terminalId, enrollment, at }).changes === 1;
  }
}

const CA_COLUMNS = 'id, name, certificate, fingerprint, created_at AS createdAt';

export class SqliteAttestation implements Immediate<AttestationStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      insertCa: `INSERT OR IGNORE INTO manufacturer_cas (id, name, certificate, fingerprint, created_at)
        VALUES (@id, @name, @certificate, @fingerprint, @createdAt)`,
      getCa: `SELECT ${CA_COLUMNS} FROM manufacturer_cas WHERE id = @id`,
      caByFingerprint: `SELECT ${CA_COLUMNS} FROM manufacturer_cas WHERE fingerprint = @fingerprint`,
      listCas: `SELECT ${CA_COLUMNS} FROM manufacturer_cas ORDER BY created_at, id`,
      setTrust: `UPDATE preregistrations SET device_public_key = @devicePublicKey, manufacturer_ca_id = @manufacturerCaId
        WHERE serial_number = @serialNumber`,
      trustOf: `SELECT device_public_key AS devicePublicKey, manufacturer_ca_id AS manufacturerCaId
        FROM preregistrations WHERE serial_number = @serialNumber`,
    });
  }
  insertManufacturerCa(row: ManufacturerCaRow): boolean {
    return this.s.insertCa.run(row).changes === 1;
  }
  getManufacturerCa(id: string): ManufacturerCaRow | undefined {
    return this.s.getCa.get({ id }) as ManufacturerCaRow | undefined;
  }
  manufacturerCaByFingerprint(fingerprint: string): ManufacturerCaRow | undefined {
    return this.s.caByFingerprint.get({ fingerprint }) as ManufacturerCaRow | undefined;
  }
  listManufacturerCas(): ManufacturerCaRow[] {
    return this.s.listCas.all() as ManufacturerCaRow[];
  }
  setTrust(serialNumber: string, trust: PreregistrationTrust): void {
    this.s.setTrust.run({ serialNumber, ...trust });
  }
  trustOf(serialNumber: string): PreregistrationTrust | undefined {
    return this.s.trustOf.get({ serialNumber }) as PreregistrationTrust | undefined;
  }
}

export class SqliteEnrollmentLimits implements Immediate<EnrollmentLimitStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      record: 'INSERT INTO enrollment_failures (method, source, at) VALUES (@method, @source, @at)',
      countAll: 'SELECT COUNT(*) AS n FROM enrollment_failures WHERE method = @method AND at > @since',
      countSource:
        'SELECT COUNT(*) AS n FROM enrollment_failures WHERE method = @method AND source = @source AND at > @since',
      nthAll:
        'SELECT at FROM enrollment_failures WHERE method = @method AND at > @since ORDER BY at LIMIT 1 OFFSET @n',
      nthSource: `SELECT at FROM enrollment_failures WHERE method = @method AND source = @source AND at > @since
        ORDER BY at LIMIT 1 OFFSET @n`,
      pruneFailures: 'DELETE FROM enrollment_failures WHERE at <= @before',
      pairingsFrom: 'SELECT COUNT(*) AS n FROM pairings WHERE source = @source AND created_at > @since',
      pendingPairings: 'SELECT COUNT(*) AS n FROM pairings WHERE activated_at IS NULL AND expires_at > @now',
      nthPairingFrom: `SELECT created_at AS at FROM pairings WHERE source = @source AND created_at > @since
        ORDER BY created_at LIMIT 1 OFFSET @n`,
      prunePairings: 'DELETE FROM pairings WHERE expires_at <= @before',
      pruneCodes: 'DELETE FROM enrollment_codes WHERE used_at IS NULL AND expires_at <= @before',
    });
  }
  recordFailure(method: string, source: string, at: number): void {
    this.s.record.run({ method, source, at });
  }
  failures(method: string, source: string | null, since: number): number {
    const r =
      source === null
        ? this.s.countAll.get({ method, since })
        : this.s.countSource.get({ method, source, since });
    return (r as { n: number }).n;
  }
  nthFailureAt(method: string, source: string | null, since: number, n: number): number | null {
    const r =
      source === null
        ? this.s.nthAll.get({ method, since, n })
        : this.s.nthSource.get({ method, source, since, n });
    return (r as { at: number } | undefined)?.at ?? null;
  }
  pairingsStartedFrom(source: string, since: number): number {
    return (this.s.pairingsFrom.get({ source, since }) as { n: number }).n;
  }
  nthPairingFromAt(source: string, since: number, n: number): number | null {
    return (this.s.nthPairingFrom.get({ source, since, n }) as { at: number } | undefined)?.at ?? null;
  }
  pendingPairings(now: number): number {
    return (this.s.pendingPairings.get({ now }) as { n: number }).n;
  }
  prune(failuresBefore: number, pairingsBefore: number, codesBefore: number) {
    return {
      failures: this.s.pruneFailures.run({ before: failuresBefore }).changes,
      pairings: this.s.prunePairings.run({ before: pairingsBefore }).changes,
      codes: this.s.pruneCodes.run({ before: codesBefore }).changes,
    };
  }
}

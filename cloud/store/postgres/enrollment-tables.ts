import type {
  AttestationStore,
  EnrollmentCodeRow,
  EnrollmentLimitStore,
  EnrollmentStore,
  ManufacturerCaRow,
  Page,
  PairingRow,
  PreregistrationRow,
  PreregistrationTrust,
} from '../store-types.js';
import { type PgExec, pgStatements } from './pg-statements.js';

const CODE_COLUMNS = `code, location_id AS locationId, terminal_name AS terminalName, created_at AS createdAt,
  expires_at AS expiresAt, used_at AS usedAt, terminal_id AS terminalId, replaces, reprovisions,
  revoked_at AS revokedAt`;
const PREREG_COLUMNS = `serial_number AS serialNumber, location_id AS locationId, name, created_at AS createdAt,
  claimed_at AS claimedAt, terminal_id AS terminalId, refused_claims AS refusedClaims`;
const PAIRING_COLUMNS = `id, secret_hash AS secretHash, activation_code AS activationCode, csr, serial_number AS serialNumber,
  model, software_version AS softwareVersion, created_at AS createdAt, expires_at AS expiresAt,
  activated_at AS activatedAt, terminal_id AS terminalId, enrollment`;

/** Enrollment codes, pre-registrations and pairings. */
export class PgEnrollment implements EnrollmentStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('enrollment', {
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
      insertPrereg: `INSERT INTO preregistrations (serial_number, location_id, name, created_at)
        VALUES (@serialNumber, @locationId, @name, @createdAt) ON CONFLICT DO NOTHING`,
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
  async insertCode(
    row: Omit<EnrollmentCodeRow, 'usedAt' | 'terminalId' | 'reprovisions' | 'revokedAt'> & {
      reprovisions?: string | null;
    },
  ): Promise<void> {
    await this.q.run(this.s.insertCode, { ...row, reprovisions: row.reprovisions ?? null });
  }
  async getCode(code: string): Promise<EnrollmentCodeRow | undefined> {
    return (await this.q.one(this.s.getCode, { code })) as EnrollmentCodeRow | undefined;
  }
  async listCodes(locationId: string | null, page: Page): Promise<EnrollmentCodeRow[]> {
    return (await this.q.all(this.s.listCodes, {
      locationId,
      after: page.after,
      limit: page.limit,
    })) as EnrollmentCodeRow[];
  }
  async revokeCode(code: string, at: number): Promise<boolean> {
    return (await this.q.run(this.s.revokeCode, { code, at })) === 1;
  }
  async useCode(code: string, terminalId: string, at: number): Promise<boolean> {
    return (await this.q.run(this.s.useCode, { code, terminalId, at })) === 1;
  }
  async insertPreregistration(
    row: Omit<PreregistrationRow, 'claimedAt' | 'terminalId' | 'refusedClaims'>,
  ): Promise<boolean> {
    return (await this.q.run(this.s.insertPrereg, row)) === 1;
  }
  async getPreregistration(serial: string): Promise<PreregistrationRow | undefined> {
    return (await this.q.one(this.s.getPrereg, { serial })) as PreregistrationRow | undefined;
  }
  async listPreregistrations(): Promise<PreregistrationRow[]> {
    return (await this.q.all(this.s.listPreregs)) as PreregistrationRow[];
  }
  async countRefusedClaim(serial: string): Promise<void> {
    await this.q.run(this.s.refusedClaim, { serial });
  }
  async claimSerial(serial: string, terminalId: string, at: number): Promise<boolean> {
    return (await this.q.run(this.s.claimSerial, { serial, terminalId, at })) === 1;
  }
  async insertPairing(
    row: Omit<PairingRow, 'activatedAt' | 'terminalId' | 'enrollment'> & { source: string },
  ): Promise<void> {
    await this.q.run(this.s.insertPairing, row);
  }
  async getPairing(id: string): Promise<PairingRow | undefined> {
    return (await this.q.one(this.s.getPairing, { id })) as PairingRow | undefined;
  }
  async getPairingByCode(code: string): Promise<PairingRow | undefined> {
    return (await this.q.one(this.s.pairingByCode, { code })) as PairingRow | undefined;
  }
  async activatePairing(id: string, terminalId: string, enrollment: string, at: number): Promise<boolean> {
    return (await this.q.run(this.s.activate, { id, terminalId, enrollment, at })) === 1;
  }
}

const CA_COLUMNS = 'id, name, certificate, fingerprint, created_at AS createdAt';

export class PgAttestation implements AttestationStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('attestation', {
      insertCa: `INSERT INTO manufacturer_cas (id, name, certificate, fingerprint, created_at)
        VALUES (@id, @name, @certificate, @fingerprint, @createdAt) ON CONFLICT DO NOTHING`,
      getCa: `SELECT ${CA_COLUMNS} FROM manufacturer_cas WHERE id = @id`,
      caByFingerprint: `SELECT ${CA_COLUMNS} FROM manufacturer_cas WHERE fingerprint = @fingerprint`,
      listCas: `SELECT ${CA_COLUMNS} FROM manufacturer_cas ORDER BY created_at, id`,
      setTrust: `UPDATE preregistrations SET device_public_key = @devicePublicKey, manufacturer_ca_id = @manufacturerCaId
        WHERE serial_number = @serialNumber`,
      trustOf: `SELECT device_public_key AS devicePublicKey, manufacturer_ca_id AS manufacturerCaId
        FROM preregistrations WHERE serial_number = @serialNumber`,
    });
  }
  async insertManufacturerCa(row: ManufacturerCaRow): Promise<boolean> {
    return (await this.q.run(this.s.insertCa, row)) === 1;
  }
  async getManufacturerCa(id: string): Promise<ManufacturerCaRow | undefined> {
    return (await this.q.one(this.s.getCa, { id })) as ManufacturerCaRow | undefined;
  }
  async manufacturerCaByFingerprint(fingerprint: string): Promise<ManufacturerCaRow | undefined> {
    return (await this.q.one(this.s.caByFingerprint, { fingerprint })) as ManufacturerCaRow | undefined;
  }
  async listManufacturerCas(): Promise<ManufacturerCaRow[]> {
    return (await this.q.all(this.s.listCas)) as ManufacturerCaRow[];
  }
  async setTrust(serialNumber: string, trust: PreregistrationTrust): Promise<void> {
    await this.q.run(this.s.setTrust, { serialNumber, ...trust });
  }
  async trustOf(serialNumber: string): Promise<PreregistrationTrust | undefined> {
    return (await this.q.one(this.s.trustOf, { serialNumber })) as PreregistrationTrust | undefined;
  }
}

export class PgEnrollmentLimits implements EnrollmentLimitStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('enrollmentlimits', {
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
  async recordFailure(method: string, source: string, at: number): Promise<void> {
    await this.q.run(this.s.record, { method, source, at });
  }
  async failures(method: string, source: string | null, since: number): Promise<number> {
    const r =
      source === null
        ? await this.q.one(this.s.countAll, { method, since })
        : await this.q.one(this.s.countSource, { method, source, since });
    return (r as { n: number }).n;
  }
  async nthFailureAt(
    method: string,
    source: string | null,
    since: number,
    n: number,
  ): Promise<number | null> {
    const r =
      source === null
        ? await this.q.one(this.s.nthAll, { method, since, n })
        : await this.q.one(this.s.nthSource, { method, source, since, n });
    return (r as { at: number } | undefined)?.at ?? null;
  }
  async pairingsStartedFrom(source: string, since: number): Promise<number> {
    return ((await this.q.one(this.s.pairingsFrom, { source, since })) as { n: number }).n;
  }
  async nthPairingFromAt(source: string, since: number, n: number): Promise<number | null> {
    return (
      ((await this.q.one(this.s.nthPairingFrom, { source, since, n })) as { at: number } | undefined)?.at ??
      null
    );
  }
  async pendingPairings(now: number): Promise<number> {
    return ((await this.q.one(this.s.pendingPairings, { now })) as { n: number }).n;
  }
  async prune(failuresBefore: number, pairingsBefore: number, codesBefore: number) {
    return {
      failures: await this.q.run(this.s.pruneFailures, { before: failuresBefore }),
      pairings: await this.q.run(this.s.prunePairings, { before: pairingsBefore }),
      codes: await this.q.run(this.s.pruneCodes, { before: codesBefore }),
    };
  }
}

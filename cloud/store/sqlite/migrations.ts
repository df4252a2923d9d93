/**
 * The cloud's schema, every step of it in order: `MIGRATIONS[i]` brings a database from
 * `PRAGMA user_version` i to i+1 (protocol/sqlite-migrations.ts). Only ever append a step.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE locations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE enrollment_codes (
    code TEXT PRIMARY KEY,
    location_id TEXT NOT NULL REFERENCES locations(id),
    terminal_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    terminal_id TEXT
  );
  CREATE TABLE terminals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    location_id TEXT NOT NULL REFERENCES locations(id),
    model TEXT,
    serial_number TEXT,
    software_version TEXT,
    created_at INTEGER NOT NULL,
    deactivated_at INTEGER,
    cert_fingerprint TEXT NOT NULL,
    cert_serial TEXT NOT NULL,
    cert_not_after INTEGER NOT NULL,
    last_seen INTEGER,
    closed_cleanly INTEGER NOT NULL DEFAULT 0,
    boot_id TEXT,
    battery_level INTEGER,
    health TEXT
  );
  CREATE INDEX terminals_location ON terminals(location_id, seq);
  `,
  `
  CREATE TABLE location_configs (
    location_id TEXT PRIMARY KEY REFERENCES locations(id),
    template TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE terminal_configs (
    terminal_id TEXT PRIMARY KEY REFERENCES terminals(id),
    overrides TEXT NOT NULL,
    desired TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_version INTEGER,
    status TEXT NOT NULL,
    errors TEXT,
    updated_at INTEGER NOT NULL
  );
  -- One counter for every config version the cloud hands out: versions only ever go up.
  CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
  INSERT INTO counters (name, value) VALUES ('config_version', 0);
  `,
  `
  CREATE TABLE transactions (
    rseq INTEGER PRIMARY KEY AUTOINCREMENT, -- the order the cloud received them in
    terminal_id TEXT NOT NULL REFERENCES terminals(id),
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    created_at TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    offline INTEGER NOT NULL,
    expired INTEGER NOT NULL,
    card_last4 TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    result_delivered INTEGER NOT NULL DEFAULT 0,
    deliveries INTEGER NOT NULL DEFAULT 1,
    UNIQUE (terminal_id, id)
  );
  CREATE INDEX transactions_undelivered ON transactions(terminal_id, result_delivered, rseq);
  `,
  `
  -- Renewal: the new certificate is pending until the terminal first connects with it; until
  -- then the old one still works, so a device that lost power mid-renewal is never locked out.
  ALTER TABLE terminals ADD COLUMN pending_fingerprint TEXT;
  ALTER TABLE terminals ADD COLUMN pending_serial TEXT;
  ALTER TABLE terminals ADD COLUMN pending_not_after INTEGER;
  ALTER TABLE terminals ADD COLUMN deactivation_reason TEXT;
  -- The status last announced to webhooks (status is derived; this is what was last said).
  ALTER TABLE terminals ADD COLUMN announced_status TEXT;
  ALTER TABLE enrollment_codes ADD COLUMN replaces TEXT;
  CREATE TABLE preregistrations (
    serial_number TEXT PRIMARY KEY,
    location_id TEXT NOT NULL REFERENCES locations(id),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    claimed_at INTEGER,
    terminal_id TEXT,
    refused_claims INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE pairings (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    activation_code TEXT NOT NULL UNIQUE,
    csr TEXT NOT NULL,
    serial_number TEXT,
    model TEXT,
    software_version TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    activated_at INTEGER,
    terminal_id TEXT,
    enrollment TEXT
  );
  CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  -- The webhook outbox: an event and its deliveries are written in the transaction that caused
  -- them, so a cloud restart loses none.
  CREATE TABLE webhook_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE webhook_deliveries (
    event_seq INTEGER NOT NULL REFERENCES webhook_events(seq),
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at INTEGER,
    failed_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    PRIMARY KEY (event_seq, endpoint_id)
  );
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
  `,
  `
  CREATE TABLE actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- delivery order
    id TEXT NOT NULL UNIQUE,
    terminal_id TEXT NOT NULL REFERENCES terminals(id),
    type TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    step TEXT,
    percent INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    delivered_at INTEGER
  );
  CREATE INDEX actions_by_terminal ON actions(terminal_id, seq);
  CREATE INDEX actions_queued ON actions(expires_at) WHERE status = 'queued';
  CREATE TABLE releases (
    version TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    signature TEXT NOT NULL,
    file TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  ALTER TABLE terminals ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
`,
  `
  -- The last diagnostics report each terminal sent (POST /v1/terminals/{id}/diagnostics).
  CREATE TABLE diagnostics_reports (
    terminal_id TEXT PRIMARY KEY REFERENCES terminals(id),
    report TEXT NOT NULL,
    received_at INTEGER NOT NULL
  );
  `,
  `
  CREATE TABLE manufacturer_cas (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    certificate TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  ALTER TABLE preregistrations ADD COLUMN device_public_key TEXT;
  ALTER TABLE preregistrations ADD COLUMN manufacturer_ca_id TEXT REFERENCES manufacturer_cas(id);
`,
  `
  ALTER TABLE releases ADD COLUMN downgrade_signature TEXT;
  ALTER TABLE releases ADD COLUMN downgrade_from TEXT;
`,
  `
  CREATE TABLE enrollment_failures (
    method TEXT NOT NULL,
    source TEXT NOT NULL,
    at INTEGER NOT NULL
  );
  CREATE INDEX enrollment_failures_by_method ON enrollment_failures(method, at);
  CREATE INDEX enrollment_failures_by_source ON enrollment_failures(method, source, at);
  ALTER TABLE pairings ADD COLUMN source TEXT;
  CREATE INDEX pairings_by_source ON pairings(source, created_at);
  CREATE INDEX pairings_by_expiry ON pairings(expires_at);
  CREATE INDEX enrollment_codes_unused_by_expiry ON enrollment_codes(expires_at) WHERE used_at IS NULL;
`,
  `
  -- Issue 20: organizations → stores → terminals (PeakPOS). Every store that exists joins the
  -- default organization.
  CREATE TABLE organizations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  INSERT INTO organizations (id, slug, name, created_at)
    VALUES ('org_default', 'default', 'Default organization', CAST(strftime('%s', 'now') AS INTEGER) * 1000);
  ALTER TABLE locations ADD COLUMN seq INTEGER;
  UPDATE locations SET seq = rowid;
  CREATE UNIQUE INDEX locations_seq ON locations(seq);
  ALTER TABLE locations ADD COLUMN organization_id TEXT NOT NULL DEFAULT 'org_default';
  ALTER TABLE locations ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE locations ADD COLUMN timezone TEXT;
  ALTER TABLE locations ADD COLUMN address TEXT;
  CREATE INDEX locations_by_organization ON locations(organization_id, seq);
  -- Status: what the cloud saw go wrong, the device clock's skew, when the announced status began.
  ALTER TABLE terminals ADD COLUMN announced_at INTEGER;
  ALTER TABLE terminals ADD COLUMN problem TEXT;
  ALTER TABLE terminals ADD COLUMN problem_at INTEGER;
  ALTER TABLE terminals ADD COLUMN clock_skew_ms INTEGER;
  ALTER TABLE terminals ADD COLUMN replaces TEXT;
  ALTER TABLE terminals ADD COLUMN replaced_by TEXT;
  CREATE INDEX terminals_by_serial ON terminals(serial_number);
  CREATE TABLE terminal_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    terminal_id TEXT NOT NULL REFERENCES terminals(id),
    at INTEGER NOT NULL,
    status TEXT NOT NULL,
    previous_status TEXT,
    reason TEXT
  );
  CREATE INDEX terminal_events_by_terminal ON terminal_events(terminal_id, seq);
  CREATE TABLE revoked_certificates (
    fingerprint TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL REFERENCES terminals(id),
    revoked_at INTEGER NOT NULL
  );
  ALTER TABLE enrollment_codes ADD COLUMN reprovisions TEXT;
  ALTER TABLE enrollment_codes ADD COLUMN revoked_at INTEGER;
  CREATE INDEX enrollment_codes_by_creation ON enrollment_codes(created_at, code);
`,
  `
  -- Webhook endpoints are deleted softly: their past deliveries stay readable in the outbox.
  ALTER TABLE webhook_endpoints ADD COLUMN deleted_at INTEGER;
  ALTER TABLE webhook_endpoints ADD COLUMN seq INTEGER;
  UPDATE webhook_endpoints SET seq = rowid;
`,
  `
  -- The support portal: operator accounts, their sessions, and what each of them did.
  CREATE TABLE operators (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE portal_sessions (
    token_hash TEXT PRIMARY KEY,
    operator TEXT NOT NULL REFERENCES operators(name) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
  );
  CREATE INDEX portal_sessions_by_operator ON portal_sessions(operator);
  CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    detail TEXT
  );
  CREATE INDEX audit_by_target ON audit_log(target, seq);
`,
  `
  -- Issue 22: presence (which gateway holds a terminal's newest link, and that link's version),
  -- the gateways alive by lease, and the calls routed to the gateway that holds a link.
  ALTER TABLE terminals ADD COLUMN link_gateway TEXT;
  ALTER TABLE terminals ADD COLUMN link_version INTEGER;
  CREATE INDEX terminals_by_link ON terminals(link_gateway) WHERE link_gateway IS NOT NULL;
  CREATE TABLE gateway_leases (
    gateway_id TEXT PRIMARY KEY,
    lease_until INTEGER NOT NULL
  );
  CREATE TABLE link_calls (
    id TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    gateway_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    from_gateway TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    taken_at INTEGER,
    answer TEXT
  );
  CREATE INDEX link_calls_open ON link_calls(gateway_id, created_at) WHERE taken_at IS NULL;
  INSERT INTO counters (name, value) VALUES ('link_version', 0);
`,
  `
  -- Issue 24: deployments (a release rolled out in groups) and their terminals; collect_logs bundles.
  CREATE TABLE deployments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    release_version TEXT NOT NULL,
    target TEXT NOT NULL,
    groups_spec TEXT NOT NULL,
    rules TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    started_groups INTEGER NOT NULL,
    group_count INTEGER NOT NULL,
    switch_now INTEGER NOT NULL,
    start_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX deployments_active ON deployments(state) WHERE state IN ('scheduled', 'running', 'paused');
  CREATE TABLE deployment_targets (
    deployment_id TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    group_index INTEGER NOT NULL,
    state TEXT NOT NULL,
    action_id TEXT,
    asked_at INTEGER,
    reason TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (deployment_id, terminal_id)
  );
  CREATE INDEX deployment_targets_by_group ON deployment_targets(deployment_id, group_index, state);
  CREATE INDEX deployment_targets_by_action ON deployment_targets(action_id) WHERE action_id IS NOT NULL;
  CREATE INDEX deployment_targets_asked ON deployment_targets(deployment_id, asked_at) WHERE asked_at IS NOT NULL;
  CREATE TABLE log_bundles (
    action_id TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    gzip BLOB NOT NULL,
    size INTEGER NOT NULL,
    received_at INTEGER NOT NULL
  );
`,
];

/**
 * The cloud's TLS policy (Mozilla "intermediate", without the DHE suites: the cloud has no DH
 * parameters): TLS 1.2 and 1.3 only, and on TLS 1.2 only forward-secret AEAD suites — ECDHE key
 * exchange with AES-GCM or ChaCha20-Poly1305. No static-RSA key exchange, no CBC, no SHA-1 MACs.
 * docs/protocol.md §2 "TLS" publishes the same list; test/e2e/tls-policy.test.ts checks it with
 * `openssl s_client`.
 */
export const TLS13_SUITES = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
];
export const TLS12_SUITES = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

/** Options for node:tls / node:https servers. */
export const TLS_SERVER_POLICY = {
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  // Node takes TLS 1.3 suites (TLS_…) and TLS 1.2 cipher names in one list.
  ciphers: [...TLS13_SUITES, ...TLS12_SUITES].join(':'),
  ecdhCurve: 'X25519:prime256v1:secp384r1',
  // Mozilla intermediate: every suite offered is strong, so the client picks (ChaCha20 on devices
  // without AES instructions).
  honorCipherOrder: false,
} as const;

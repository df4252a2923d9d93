import {
  constants,
  createCipheriv,
  createDecipheriv,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';

/**
 * Card data sealed to the cloud's data public key before the agent stores it: a fresh AES-256-GCM
 * key per card, wrapped with RSA-OAEP-256. The agent can seal but never open; only the cloud holds
 * the private key. Pure computation (node:crypto), no I/O.
 */
export const SealedCard = Type.Object(
  {
    alg: Type.Literal('RSA-OAEP-256+A256GCM'),
    ek: Type.String({ maxLength: 1024, description: 'wrapped AES key, base64' }),
    iv: Type.String({ maxLength: 32 }),
    ct: Type.String({ maxLength: 4096 }),
    tag: Type.String({ maxLength: 32 }),
  },
  { additionalProperties: false },
);
export type SealedCard = Static<typeof SealedCard>;

export function sealCard(card: unknown, dataPublicKeyPem: string): SealedCard {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([cipher.update(JSON.stringify(card), 'utf8'), cipher.final()]);
  const ek = publicEncrypt(
    { key: dataPublicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    key,
  );
  key.fill(0);
  return {
    alg: 'RSA-OAEP-256+A256GCM',
    ek: ek.toString('base64'),
    iv: iv.toString('base64'),
    ct: ct.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  };
}

/**
 * Opens an envelope; throws if it was tampered with or sealed to another key. Pass the private
 * key as a KeyObject where many are opened: a PEM is parsed again on every call.
 */
export function openCard(sealed: SealedCard, dataPrivateKey: string | KeyObject): unknown {
  const key = privateDecrypt(
    { key: dataPrivateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    Buffer.from(sealed.ek, 'base64'),
  );
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
  decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
  const clear = Buffer.concat([decipher.update(Buffer.from(sealed.ct, 'base64')), decipher.final()]);
  key.fill(0);
  return JSON.parse(clear.toString('utf8'));
}

/**
 * How the cloud writes its own secrets and identity (CA key and certificate, server key, data
 * key, admin token, release keys): the one durable write every process uses (files/atomic-file.ts)
 * — temp file, fsync, mode forced, rename (or, for `exclusive`, link: it fails if the file exists),
 * directory fsynced.
 */
export { writeFileAtomic as writeSecretFile } from '../../files/atomic-file.js';

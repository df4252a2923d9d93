import { createPrivateKey } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { openCard, type SealedCard } from '../../protocol/card-envelope.js';

/**
 * A worker of the envelope pool (cloud/envelope-pool.ts): opens sealed card envelopes off the
 * cloud's event loop. It gets the data private key once, at start, and sends back only what the
 * cloud keeps of a card — its last four digits — or why it could not be opened. This file is the
 * worker's entry point (a bundle of its own, dist/bin/envelope-worker.js); nothing imports it.
 */
export interface OpenRequest {
  id: number;
  envelopes: SealedCard[];
}
export type OpenedCard = { last4: string | null } | { error: string };
export interface OpenReply {
  id: number;
  results: OpenedCard[];
}

const key = createPrivateKey((workerData as { dataPrivateKeyPem: string }).dataPrivateKeyPem);

parentPort!.on('message', (req: OpenRequest) => {
  const results = req.envelopes.map((envelope): OpenedCard => {
    try {
      const card = openCard(envelope, key) as { pan?: unknown };
      return { last4: typeof card.pan === 'string' ? card.pan.slice(-4) : null };
    } catch {
      return { error: 'card data cannot be opened by this cloud' };
    }
  });
  parentPort!.postMessage({ id: req.id, results } satisfies OpenReply);
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** Issue 19.2: the daemon's composition root is wiring only — no routes, no policy — and short. */
describe('composition roots', () => {
  it('agent/main.ts is under 200 lines and holds no route, no refusal, no RPC handler', () => {
    const main = read('agent/main.ts');
    expect(main.split('\n').length).toBeLessThan(200);
    expect(main).not.toMatch(/pattern:/); // routes live with their features
    expect(main).not.toMatch(/new Refusal|new Reply/);
    expect(main).not.toMatch(/handlers:\s*\{/);
    expect(main).not.toMatch(/\bprocess\.env\b/);
  });

  it('every feature of the daemon is built, started and stopped by it (agent/feature.ts)', () => {
    const main = read('agent/main.ts');
    for (const feature of [
      'ConfigFeature',
      'LinkFeature',
      'CertificateFeature',
      'TransactionsFeature',
      'ActionsFeature',
      'StatusFeature',
      'EventsFeature',
      'LocalApiFeature',
    ])
      expect(main).toContain(`new ${feature}(`);
    expect(main).toMatch(/startFeatures\(/);
    expect(main).toMatch(/stopFeatures\(/);
  });
});

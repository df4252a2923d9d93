import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCHEMA_SECTION_END, SCHEMA_SECTION_START, schemaSection } from '../../protocol/schema-docs.js';
import { ROOT } from '../support/processes.js';

describe('docs/protocol.md', () => {
  it('publishes exactly the JSON Schemas the code validates with', () => {
    const file = join(ROOT, 'docs/protocol.md');
    const doc = readFileSync(file, 'utf8');
    const start = doc.indexOf(SCHEMA_SECTION_START);
    const end = doc.indexOf(SCHEMA_SECTION_END);
    expect(start, 'schema section markers in docs/protocol.md').toBeGreaterThanOrEqual(0);
    const current = doc.slice(start, end + SCHEMA_SECTION_END.length);
    if (process.env.UPDATE_DOCS === '1' && current !== schemaSection()) {
      writeFileSync(file, doc.replace(current, schemaSection()));
      return;
    }
    expect(current).toBe(schemaSection());
  });
});

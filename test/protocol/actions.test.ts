import { describe, expect, it } from 'vitest';
import {
  ACTION_STATES,
  type ActionState,
  canMove,
  compareVersions,
  MAX_RELEASE_BYTES,
  ReleaseDescriptor,
  releaseManifest,
} from '../../protocol/actions.js';
import { compileValidator } from '../../protocol/schema-validation.js';

describe('action lifecycle', () => {
  const allowed: [ActionState, ActionState][] = [
    ['queued', 'processing'],
    ['queued', 'completed'],
    ['queued', 'failed'],
    ['processing', 'processing'],
    ['processing', 'completed'],
    ['processing', 'failed'],
  ];
  it('moves only forward, and a final state never changes', () => {
    for (const from of ACTION_STATES)
      for (const to of ACTION_STATES)
        expect(canMove(from, to), `${from} → ${to}`).toBe(allowed.some(([f, t]) => f === from && t === to));
  });
});

describe('versions and the release manifest', () => {
  it('orders semantic versions, a pre-release before its release', () => {
    const sorted = ['1.10.0', '1.2.0', '1.2.0-rc.1', '0.9.9', '1.2.0-beta', '2.0.0'].sort(compareVersions);
    expect(sorted).toEqual(['0.9.9', '1.2.0-beta', '1.2.0-rc.1', '1.2.0', '1.10.0', '2.0.0']);
    expect(compareVersions('1.2.3', '1.2.3')).toBe(0);
    // SemVer 2.0 §11's own example, shuffled, sorts back into its order.
    const semver = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
    ];
    expect([...semver].reverse().sort(compareVersions)).toEqual(semver);
    // Numeric identifiers are numbers: an older rc is not an "upgrade" (found by a security review).
    expect(compareVersions('1.5.0-rc.9', '1.5.0-rc.10')).toBeLessThan(0);
    expect(compareVersions('1.0.0-rc-2', '1.0.0-rc-10')).toBeGreaterThan(0); // "rc-2" vs "rc-10": one identifier, ASCII
    expect(compareVersions('1.0.0-x.y.z', '1.0.0-x.y')).toBeGreaterThan(0);
  });

  it('binds the version, digest and size in the signed text', () => {
    const m = releaseManifest({ version: '1.2.0', sha256: 'ab'.repeat(32), size: 42 });
    expect(m).toBe(`posagent-release\nversion 1.2.0\nsha256 ${'ab'.repeat(32)}\nsize 42\n`);
  });

  it('one size cap for the cloud that publishes and the agent that installs: a descriptor past it is not valid', () => {
    const v = compileValidator(ReleaseDescriptor);
    const d = { version: '1.2.0', sha256: 'ab'.repeat(32), signature: 'c2ln' };
    expect(v.check({ ...d, size: MAX_RELEASE_BYTES }).ok).toBe(true);
    const past = v.check({ ...d, size: MAX_RELEASE_BYTES + 1 });
    expect(past.ok).toBe(false);
    if (!past.ok) expect(past.issues[0]!.path).toBe('/size');
  });
});

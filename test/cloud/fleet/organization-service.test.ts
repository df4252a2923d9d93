import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { markForm } from '../../../cloud/body-validation.js';
import { rsaCsr } from '../../support/csrs.js';
import { cloudRig, refusalOf } from '../cloud-rig.js';

/** Organizations and stores (cloud/fleet/organization-service.ts), in-process over a real SQLite file. */
describe('organizations and stores', () => {
  it('an organization: slug from the name when not given, made unique; get by id or slug; rename', async () => {
    const rig = await cloudRig();
    const orgs = rig.fleet.organizations;
    const a = await orgs.createOrganization({ name: 'Acme Coffee GmbH' });
    expect(a).toMatchObject({ object: 'organization', slug: 'acme-coffee-gmbh', name: 'Acme Coffee GmbH' });
    expect(a.createdAt).toBe(Math.floor(rig.clock.ms / 1000));
    expect((await orgs.createOrganization({ name: 'Acme  Coffee gmbh!' })).slug).toBe('acme-coffee-gmbh-2');
    expect((await orgs.getOrganization('acme-coffee-gmbh')).id).toBe(a.id);
    expect(await orgs.updateOrganization(a.id, { name: 'Acme' })).toMatchObject({
      name: 'Acme',
      slug: 'acme-coffee-gmbh',
    });
    const list = await orgs.listOrganizations(new URLSearchParams('limit=2'));
    expect(list).toMatchObject({ object: 'list', has_more: true });
    expect(list.data.map((o) => o.slug)).toEqual(['default', 'acme-coffee-gmbh']);
    const next = await orgs.listOrganizations(
      new URLSearchParams(`limit=2&starting_after=${list.data[1]!.id}`),
    );
    expect(next.data.map((o) => o.slug)).toEqual(['acme-coffee-gmbh-2']);
    expect(next.has_more).toBe(false);
  });

  it('bad organizations are refused with a code and the reason; nothing stored changes', async () => {
    const rig = await cloudRig();
    const orgs = rig.fleet.organizations;
    await orgs.createOrganization({ name: 'Acme', slug: 'acme' });
    const wal = () => readFileSync(join(rig.dir, 'cloud.db-wal')).toString('base64');
    const before = wal();
    const cases: [unknown, string, RegExp][] = [
      [{ name: 'X', slug: 'acme' }, 'slug_taken', /slug acme is taken/],
      [{ name: 'X', slug: 'Acme' }, 'invalid_request', /slug/],
      [{ name: 'X', slug: '-x' }, 'invalid_request', /slug/],
      [{ name: 'X', slug: 'a'.repeat(64) }, 'invalid_request', /slug/],
      [{ name: '' }, 'invalid_request', /name/],
      [{ name: 'bad\u001b[31m' }, 'invalid_request', /name/],
      [{ name: 'X', plan: 'gold' }, 'invalid_request', /plan/],
      [{ name: 'X', id: 'org_default' }, 'already_exists', /exists already/],
      [{ name: 'X', id: 'nope' }, 'invalid_request', /id/],
    ];
    for (const [body, code, message] of cases) {
      const r = await refusalOf(async () => await orgs.createOrganization(body));
      expect([r.code, r.message]).toEqual([code, expect.stringMatching(message)]);
    }
    expect(
      (await refusalOf(async () => await orgs.updateOrganization('org_default', { slug: 'acme' }))).code,
    ).toBe('slug_taken');
    expect((await refusalOf(async () => await orgs.getOrganization('org_nope'))).code).toBe('not_found');
    expect(
      (await refusalOf(async () => await orgs.listOrganizations(new URLSearchParams('limit=0')))).code,
    ).toBe('invalid_request');
    expect(
      (await refusalOf(async () => await orgs.listOrganizations(new URLSearchParams('limit=1e2')))).code,
    ).toBe('invalid_request');
    expect(
      (
        await refusalOf(
          async () => await orgs.listOrganizations(new URLSearchParams('starting_after=org_gone')),
        )
      ).message,
    ).toMatch(/not an item of this list/);
    expect(
      (
        await refusalOf(
          async () => await orgs.listOrganizations(new URLSearchParams(`starting_after=${'x'.repeat(5000)}`)),
        )
      ).code,
    ).toBe('invalid_request');
    expect(wal()).toBe(before);
    expect(await rig.store.organizations.list({ after: null, limit: 100 })).toHaveLength(2);
  });

  it('a store: in the default organization unless told; rename, deactivate, timezone, address; counts by status', async () => {
    const rig = await cloudRig();
    const orgs = rig.fleet.organizations;
    const store = await orgs.createLocation({ name: 'Downtown' });
    expect(store).toMatchObject({
      object: 'location',
      organizationId: 'org_default',
      active: true,
      timezone: null,
      address: null,
      counts: { active: 0, online: 0, needs_attention: 0, offline: 0, error: 0 },
    });
    const { code } = await rig.enrollment.createEnrollmentCode({
      locationId: store.id,
      terminalName: 'Till 1',
    });
    await rig.enrollment.enroll({ method: 'code', code, csr: rsaCsr().csr }, '10.0.0.1');
    expect((await orgs.getLocation(store.id)).counts).toMatchObject({ active: 1, provisioning: 1 });
    const updated = await orgs.updateLocation(store.id, {
      name: 'Downtown 2',
      timezone: 'Europe/Berlin',
      address: { line1: 'Main St 1', city: 'Berlin', country: 'DE' },
    });
    expect(updated).toMatchObject({
      name: 'Downtown 2',
      timezone: 'Europe/Berlin',
      address: { city: 'Berlin' },
    });
    expect((await orgs.updateLocation(store.id, { active: false, timezone: null })).active).toBe(false);
    // A deactivated store takes no new terminals.
    const r = await refusalOf(
      async () => await rig.enrollment.createEnrollmentCode({ locationId: store.id, terminalName: 'Till 2' }),
    );
    expect([r.code, r.message]).toEqual([
      'location_inactive',
      expect.stringMatching(/deactivated; reactivate/),
    ]);
    // A form body converts to the schema's types (active=true).
    expect((await orgs.updateLocation(store.id, markForm({ active: 'true' }))).active).toBe(true);
  });

  it('bad stores and another organization’s ids are refused; nothing stored changes', async () => {
    const rig = await cloudRig();
    const orgs = rig.fleet.organizations;
    const acme = await orgs.createOrganization({ name: 'Acme' });
    const other = await orgs.createOrganization({ name: 'Other' });
    const store = await orgs.createLocation({ name: 'A1', organizationId: acme.id });
    const otherStore = await orgs.createLocation({ name: 'O1', organizationId: other.id });
    const wal = () => readFileSync(join(rig.dir, 'cloud.db-wal')).toString('base64');
    const before = wal();
    const cases: [() => unknown, string, RegExp][] = [
      [
        async () => await orgs.createLocation({ name: 'X', organizationId: 'org_nope' }),
        'not_found',
        /no organization/,
      ],
      [
        async () => await orgs.createLocation({ name: 'X', timezone: 'Mars/Olympus' }),
        'invalid_request',
        /IANA/,
      ],
      [
        async () => await orgs.createLocation({ name: 'X', address: { street: 'x' } }),
        'invalid_request',
        /street/,
      ],
      [
        async () => await orgs.createLocation({ name: 'X', address: { country: 'Germany' } }),
        'invalid_request',
        /country/,
      ],
      [
        async () => await orgs.createLocation({ name: 'X', id: store.id }),
        'already_exists',
        /exists already/,
      ],
      [async () => await orgs.updateLocation(store.id, { active: 'yes' }), 'invalid_request', /active/],
      [
        async () => await orgs.updateLocation(store.id, markForm({ active: 'maybe' })),
        'invalid_request',
        /active/,
      ],
      [
        async () => await orgs.updateLocation(store.id, { organizationId: other.id }),
        'invalid_request',
        /organizationId/,
      ],
      [async () => await orgs.updateLocation('loc_nope', { name: 'X' }), 'not_found', /no location/],
      [
        async () => await orgs.listLocations(new URLSearchParams('organizationId=org_nope')),
        'not_found',
        /no organization/,
      ],
      [
        async () =>
          await rig.fleet.listTerminals(
            new URLSearchParams(`organizationId=${acme.id}&locationId=${otherStore.id}`),
          ),
        'invalid_request',
        /belongs to organization/,
      ],
    ];
    for (const [fn, code, message] of cases) {
      const r = await refusalOf(fn);
      expect([r.code, r.message]).toEqual([code, expect.stringMatching(message)]);
    }
    expect(wal()).toBe(before);
    expect(
      (await orgs.listLocations(new URLSearchParams(`organizationId=${acme.slug}`))).data.map((l) => l.id),
    ).toEqual([store.id]);
  });
});

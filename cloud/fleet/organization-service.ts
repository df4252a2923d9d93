import { Type } from '@sinclair/typebox';
import { DisplayName } from '../../protocol/formats.js';
import { Refusal } from '../../protocol/refusal.js';
import { compileValidator } from '../../protocol/schema-validation.js';
import { parseBody } from '../body-validation.js';
import { newId } from '../fleet-ids.js';
import { checkCursor, type ListOf, listPage, pageOf } from '../list-page.js';
import type { CloudStore, LocationRow, OrganizationRow, TerminalRow } from '../store/store-types.js';
import type { TerminalStatus } from './terminal-status.js';

/**
 * Organizations → stores (the VINR `location`) → terminals, as PeakPOS support works: create,
 * list, get, rename, deactivate a store, and each store's terminal counts by status — "verify
 * the store has the expected count of active terminals" in one call.
 */
export interface OrganizationServiceOptions {
  store: CloudStore;
  now(): number;
  /** A terminal's derived status (cloud/fleet/terminal-status.ts, through the fleet service). */
  statusOf(row: TerminalRow): TerminalStatus;
}

/** The organization every store belonged to before organizations existed (migration 10). */
export const DEFAULT_ORGANIZATION_ID = 'org_default';

const Slug = Type.String({
  minLength: 1,
  maxLength: 63,
  pattern: '^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$',
  description: 'lower-case letters, digits and dashes (not first or last), at most 63',
});
const Timezone = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'an IANA time zone, e.g. Europe/Berlin',
});
const AddressLine = Type.String({ maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]*$' });
const Address = Type.Object(
  {
    line1: Type.Optional(AddressLine),
    line2: Type.Optional(AddressLine),
    city: Type.Optional(AddressLine),
    postalCode: Type.Optional(Type.String({ maxLength: 20, pattern: '^[A-Za-z0-9 -]*$' })),
    region: Type.Optional(AddressLine),
    country: Type.Optional(Type.String({ pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2' })),
  },
  { additionalProperties: false },
);
const ClientId = (prefix: string) =>
  Type.String({
    pattern: `^${prefix}_[A-Za-z0-9]{1,32}$`,
    description: `an id of your own for the new object, ${prefix}_ and 1–32 letters or digits`,
  });

const validators = {
  orgCreate: compileValidator(
    Type.Object(
      { name: DisplayName, slug: Type.Optional(Slug), id: Type.Optional(ClientId('org')) },
      { additionalProperties: false },
    ),
  ),
  orgUpdate: compileValidator(
    Type.Object(
      { name: Type.Optional(DisplayName), slug: Type.Optional(Slug) },
      { additionalProperties: false },
    ),
  ),
  locationCreate: compileValidator(
    Type.Object(
      {
        name: DisplayName,
        id: Type.Optional(ClientId('loc')),
        organizationId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
        timezone: Type.Optional(Timezone),
        address: Type.Optional(Address),
      },
      { additionalProperties: false },
    ),
  ),
  locationUpdate: compileValidator(
    Type.Object(
      {
        name: Type.Optional(DisplayName),
        active: Type.Optional(Type.Boolean()),
        timezone: Type.Optional(Type.Union([Timezone, Type.Null()])),
        address: Type.Optional(Type.Union([Address, Type.Null()])),
      },
      { additionalProperties: false },
    ),
  ),
};

export interface OrganizationView {
  id: string;
  object: 'organization';
  slug: string;
  name: string;
  /** Unix seconds. */
  createdAt: number;
}

export interface StoreCounts {
  /** Terminals not deactivated (whatever their link). */
  active: number;
  online: number;
  needs_attention: number;
  offline: number;
  error: number;
  provisioning: number;
  deactivated: number;
}

export interface LocationView {
  id: string;
  object: 'location';
  organizationId: string;
  name: string;
  active: boolean;
  timezone: string | null;
  address: Record<string, string> | null;
  /** Unix seconds. */
  createdAt: number;
  counts: StoreCounts;
}

/** A name made into a slug: "Acme Coffee GmbH" → "acme-coffee-gmbh". */
export function slugOf(name: string): string {
  const s = name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return s || 'org';
}

function checkTimezone(tz: string | null | undefined): void {
  if (tz === undefined || tz === null) return;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new Refusal('invalid_request', `timezone ${tz} is not an IANA time zone (e.g. Europe/Berlin)`, {
      kind: 'content',
    });
  }
}

export class OrganizationService {
  constructor(private readonly o: OrganizationServiceOptions) {}

  // ---- organizations ----

  async createOrganization(body: unknown): Promise<OrganizationView> {
    const req = parseBody(validators.orgCreate, body);
    const id = req.id ?? newId('org');
    if (await this.o.store.organizations.get(id))
      throw new Refusal('already_exists', `organization ${id} exists already`);
    const slug = req.slug ?? (await this.freeSlug(slugOf(req.name)));
    const row: OrganizationRow = { id, slug, name: req.name, createdAt: this.o.now() };
    // Looked up first: a refused insert would still write to the database file.
    if ((await this.o.store.organizations.bySlug(slug)) || !(await this.o.store.organizations.insert(row)))
      throw new Refusal('slug_taken', `the slug ${slug} is taken by another organization; choose another`);
    return this.organizationView(row);
  }

  /** A slug made from a name, with -2, -3… when taken (one given explicitly is refused when taken). */
  private async freeSlug(base: string): Promise<string> {
    for (let n = 1; ; n++) {
      const candidate = n === 1 ? base : `${base.slice(0, 60)}-${n}`;
      if (!(await this.o.store.organizations.bySlug(candidate))) return candidate;
    }
  }

  async listOrganizations(query: URLSearchParams): Promise<ListOf<OrganizationView>> {
    const page = pageOf(query);
    await checkCursor(page, async (id) => (await this.o.store.organizations.get(id)) !== undefined);
    return await listPage(
      page,
      async (p) => await this.o.store.organizations.list(p),
      (r) => this.organizationView(r),
    );
  }

  /** By id, or by slug (what support is told on the phone). */
  async organization(idOrSlug: string): Promise<OrganizationRow> {
    const row =
      (await this.o.store.organizations.get(idOrSlug)) ?? (await this.o.store.organizations.bySlug(idOrSlug));
    if (!row) throw new Refusal('not_found', `no organization ${idOrSlug}`);
    return row;
  }

  async getOrganization(idOrSlug: string): Promise<OrganizationView> {
    return this.organizationView(await this.organization(idOrSlug));
  }

  async updateOrganization(id: string, body: unknown): Promise<OrganizationView> {
    const req = parseBody(validators.orgUpdate, body);
    const row = await this.organization(id);
    if (!(await this.o.store.organizations.update(row.id, req)))
      throw new Refusal(
        'slug_taken',
        `the slug ${req.slug} is taken by another organization; choose another`,
      );
    return await this.getOrganization(row.id);
  }

  private organizationView(r: OrganizationRow): OrganizationView {
    return {
      id: r.id,
      object: 'organization',
      slug: r.slug,
      name: r.name,
      createdAt: Math.floor(r.createdAt / 1000),
    };
  }

  // ---- stores (locations) ----

  async createLocation(body: unknown): Promise<LocationView> {
    const req = parseBody(validators.locationCreate, body);
    const organizationId = req.organizationId ?? DEFAULT_ORGANIZATION_ID;
    if (!(await this.o.store.organizations.get(organizationId)))
      throw new Refusal('not_found', `no organization ${organizationId}`);
    checkTimezone(req.timezone);
    const id = req.id ?? newId('loc');
    if (await this.o.store.locations.get(id))
      throw new Refusal('already_exists', `location ${id} exists already`);
    const row: LocationRow = {
      id,
      name: req.name,
      createdAt: Math.floor(this.o.now() / 1000),
      organizationId,
      active: true,
      timezone: req.timezone ?? null,
      address: req.address ? JSON.stringify(req.address) : null,
    };
    await this.o.store.locations.insert(row);
    return await this.locationView(row);
  }

  /** The store, refused when there is none. */
  async location(id: string): Promise<LocationRow> {
    const row = await this.o.store.locations.get(id);
    if (!row) throw new Refusal('not_found', `no location ${id}`);
    return row;
  }

  /** A store terminals may be added to: it exists and is active (PeakPOS "Store exists and is active"). */
  async activeLocation(id: string): Promise<LocationRow> {
    const row = await this.location(id);
    if (!row.active)
      throw new Refusal(
        'location_inactive',
        `location ${id} (${row.name}) is deactivated; reactivate it (POST /v1/locations/${id} {"active": true}) first`,
      );
    return row;
  }

  async getLocation(id: string): Promise<LocationView> {
    return await this.locationView(await this.location(id));
  }

  async listLocations(query: URLSearchParams): Promise<ListOf<LocationView>> {
    const page = pageOf(query);
    const orgParam = query.get('organizationId');
    const organizationId = orgParam === null ? null : (await this.organization(orgParam)).id;
    await checkCursor(page, async (id) => (await this.o.store.locations.get(id)) !== undefined);
    return await listPage(
      page,
      async (p) => await this.o.store.locations.list(organizationId, p),
      async (r) => await this.locationView(r),
    );
  }

  async updateLocation(id: string, body: unknown): Promise<LocationView> {
    const req = parseBody(validators.locationUpdate, body);
    const row = await this.location(id);
    checkTimezone(req.timezone);
    await this.o.store.locations.update(row.id, {
      ...(req.name !== undefined ? { name: req.name } : {}),
      ...(req.active !== undefined ? { active: req.active } : {}),
      ...(req.timezone !== undefined ? { timezone: req.timezone } : {}),
      ...(req.address !== undefined
        ? { address: req.address === null ? null : JSON.stringify(req.address) }
        : {}),
    });
    return await this.getLocation(row.id);
  }

  /** Each status's count of one store's terminals; `active` is every one not deactivated. */
  async counts(locationId: string): Promise<StoreCounts> {
    const c: StoreCounts = {
      active: 0,
      online: 0,
      needs_attention: 0,
      offline: 0,
      error: 0,
      provisioning: 0,
      deactivated: 0,
    };
    for (const t of await this.o.store.terminals.at(locationId)) {
      const s = this.o.statusOf(t);
      c[s]++;
      if (s !== 'deactivated') c.active++;
    }
    return c;
  }

  async locationView(r: LocationRow): Promise<LocationView> {
    return {
      id: r.id,
      object: 'location',
      organizationId: r.organizationId,
      name: r.name,
      active: r.active,
      timezone: r.timezone,
      address: r.address === null ? null : (JSON.parse(r.address) as Record<string, string>),
      createdAt: r.createdAt,
      counts: await this.counts(r.id),
    };
  }
}

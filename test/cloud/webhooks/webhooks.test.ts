import { describe, expect, it } from 'vitest';
import { WebhookTargets } from '../../../cloud/webhooks/webhook-targets.js';
import { Webhooks } from '../../../cloud/webhooks/webhooks.js';
import { cloudRig } from '../cloud-rig.js';

async function webhookRig() {
  const rig = await cloudRig();
  const webhooks = new Webhooks({
    store: rig.store,
    now: () => rig.clock.ms,
    retryBaseMs: 5000,
    maxAttempts: 3,
    timeoutMs: 1000,
    targets: new WebhookTargets(false),
    log: rig.log,
  });
  return { ...rig, webhooks };
}

const change = {
  terminalId: 'term_1',
  name: 'Till',
  locationId: 'loc_1',
  status: 'online',
  id: 'term_1',
  previousStatus: null,
  statusReason: null,
  lastSeen: null,
};

describe('Webhooks in-process (cloud/webhooks/webhooks.ts)', () => {
  it('an endpoint to a private address is refused (webhook_target_refused) and not stored', async () => {
    const rig = await webhookRig();
    await expect(
      rig.webhooks.createEndpoint({ url: 'https://127.0.0.1/hook', events: ['terminal.online'] }),
    ).rejects.toMatchObject({ code: 'webhook_target_refused' });
    expect(await rig.store.webhooks.listEndpoints()).toEqual([]);
  });

  it('an event is put in the outbox for the endpoints subscribed to its type, and only those', async () => {
    const rig = await webhookRig();
    const rows = [
      { id: 'we_on', events: ['terminal.online'] },
      { id: 'we_off', events: ['terminal.offline'] },
    ];
    for (const r of rows)
      await rig.store.webhooks.insertEndpoint({
        id: r.id,
        url: 'https://hooks.example/',
        events: JSON.stringify(r.events),
        secret: 's',
        createdAt: rig.clock.ms,
      });
    await rig.webhooks.emit('terminal.online', change);
    expect((await rig.store.webhooks.due(rig.clock.ms, 10)).map((d) => [d.endpointId, d.type])).toEqual([
      ['we_on', 'terminal.online'],
    ]);
    const payload = JSON.parse((await rig.store.webhooks.due(rig.clock.ms, 10))[0]!.payload);
    expect(payload).toMatchObject({ object: 'event', type: 'terminal.online', data: change });
    rig.webhooks.stop();
  });

  it('an unknown endpoint is not_found', async () => {
    const rig = await webhookRig();
    await expect(rig.webhooks.getEndpoint('we_nope')).rejects.toThrow(
      expect.objectContaining({ code: 'not_found' }),
    );
  });
});

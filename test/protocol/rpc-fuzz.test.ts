import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Actions, type Direction } from '../../protocol/messages.js';
import { parseFrame } from '../../protocol/rpc-frames.js';
import { type Handlers, RpcSession } from '../../protocol/rpc-session.js';

/**
 * Issue 11: random and mutated RPC frames at both ends of the link — the RpcSession every frame
 * of the agent and of the cloud goes through. 100,000 frames per side: nothing throws, every
 * frame that is not an answer gets exactly one answer (a result, or an error frame with a code),
 * answers to calls never made get none, and every frame sent back is itself well formed.
 */
const FRAMES = Number(process.env.POSAGENT_FUZZ_FRAMES ?? 100_000);
const ACTIONS = Object.keys(Actions);

/** A session with a handler for every action it answers (validated payloads reach them; they answer validly). */
function session(answers: Direction, sent: string[]): { s: RpcSession; handled: { n: number } } {
  const handled = { n: 0 };
  const ok: Record<string, unknown> = {
    Hello: { serverTime: new Date(0).toISOString(), heartbeatIntervalSec: 30, pingIntervalSec: 15 },
    Heartbeat: { serverTime: new Date(0).toISOString() },
    ConfigApplied: {},
    TransactionsForward: { results: [] },
    RenewCertificate: { certificate: 'x', fleetCa: 'y', dataPublicKey: 'z' },
    ActionStatus: {},
    ApplyConfig: { received: true },
    TransactionResult: {},
    Deactivate: {},
    RunAction: { status: 'processing', reason: null, step: null, percent: null },
    RequestDiagnostics: {
      checks: [],
      summary: { pass: 0, warn: 0, fail: 0 },
      generatedAt: new Date(0).toISOString(),
    },
  };
  const handlers: Handlers = {};
  for (const [name, spec] of Object.entries(Actions))
    if (spec.direction === answers)
      (handlers as Record<string, () => unknown>)[name] = () => {
        handled.n++;
        return ok[name];
      };
  const s = new RpcSession({
    answers,
    handlers,
    send: (t) => sent.push(t),
    newId: () => 'x',
    callTimeoutMs: 1000,
  });
  return { s, handled };
}

/** Anything JSON can hold, nested a little. */
const json = fc.jsonValue({ maxDepth: 4 });
/** A call frame for a real action with a payload that is sometimes right, mostly wrong. */
const mutatedCall = fc
  .tuple(
    fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom(...ACTIONS)),
    fc.oneof(fc.string({ maxLength: 50 }), fc.integer(), fc.constant('')),
    fc.oneof(json, fc.dictionary(fc.string({ maxLength: 12 }), json, { maxKeys: 8 })),
  )
  .map(([action, id, payload]) => JSON.stringify([2, id, action, payload]));
const frame = fc.oneof(
  { weight: 2, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 3, arbitrary: json.map((v) => JSON.stringify(v)) },
  { weight: 5, arbitrary: mutatedCall },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(3, 4, 5, -1, 2.5), fc.string({ maxLength: 40 }), json, json)
      .map((t) => JSON.stringify(t)),
  },
  {
    weight: 1,
    arbitrary: fc.string({ maxLength: 20 }).map((s) => `[2,"${s}","Hello",{` /* truncated JSON */),
  },
);

/** A well-formed answer ([3, id, payload] or [4, id, code, description, details]): never answered back. */
function isAnswerFrame(text: string): boolean {
  const parsed = parseFrame(text);
  return parsed.ok && parsed.frame.type !== 2;
}

describe.each(['cloudToAgent', 'agentToCloud'] as const)('fuzzed frames at the %s side', (answers) => {
  it(`${FRAMES.toLocaleString('en-US')} random and mutated frames: no crash, one well-formed answer each`, async () => {
    const sent: string[] = [];
    const { s, handled } = session(answers, sent);
    let expectedAnswers = 0;
    fc.assert(
      fc.property(frame, (text) => {
        const before = sent.length;
        s.receive(text); // must never throw
        const now = sent.length - before;
        if (isAnswerFrame(text)) {
          if (now !== 0) throw new Error(`an answer frame was answered: ${text}`);
          return;
        }
        expectedAnswers++;
        // Errors go out at once; a valid call is answered once its handler's promise settles.
        if (now > 1) throw new Error(`${now} answers to one frame: ${text}`);
      }),
      { numRuns: FRAMES },
    );
    await new Promise((r) => setImmediate(r));
    expect(sent).toHaveLength(expectedAnswers);
    let errors = 0;
    for (const text of sent) {
      const out = parseFrame(text);
      expect(out.ok, text).toBe(true);
      if (out.ok && out.frame.type === 4) errors++;
    }
    process.stdout.write(
      `${answers}: ${FRAMES} frames, ${expectedAnswers} answered (${errors} error frames, ${handled.n} valid calls handled), 0 crashes\n`,
    );
    expect(errors).toBeGreaterThan(FRAMES / 2);
  }, 300_000);
});

import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { Cloud } from './processes.js';

/**
 * Measures how the cloud keeps answering while a test attacks it: a loop of admin REST GETs,
 * one after the other on a keep-alive connection, each latency recorded. It runs in a worker
 * thread of its own, so the test's own work (building and sending the attack) does not show up
 * as cloud latency. A request that fails or takes longer than `timeoutMs` counts as `timeoutMs`
 * (and as an error), so a frozen cloud cannot look fast.
 */
export interface ProbeFigures {
  count: number;
  errors: number;
  p50: number;
  p99: number;
  max: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const PROBE = `
const { parentPort, workerData: w } = require('node:worker_threads');
const { Agent, request } = require('node:https');
const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: w.ca });
const latencies = [];
let errors = 0;
let running = true;
parentPort.on('message', () => { running = false; });
function one() {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!ok) errors++;
      latencies.push(ok ? performance.now() - t0 : Math.max(w.timeoutMs, performance.now() - t0));
      resolve();
    };
    const timer = setTimeout(() => { req.destroy(); finish(false); }, w.timeoutMs);
    const req = request(new URL(w.path, w.url), { agent, headers: { authorization: 'Bearer ' + w.token } }, (res) => {
      res.resume();
      res.on('end', () => finish(res.statusCode === 200));
      res.on('error', () => finish(false));
    });
    req.on('error', () => finish(false));
    req.end();
  });
}
(async () => {
  // One request first, not counted: the connection and the code paths warm, on both sides.
  await one();
  latencies.length = 0;
  errors = 0;
  parentPort.postMessage({ started: true });
  while (running) await one();
  agent.destroy();
  parentPort.postMessage({ latencies, errors });
})();
`;

export async function startRestProbe(
  cloud: Pick<Cloud, 'url' | 'caFile' | 'adminToken'>,
  path = '/v1/terminals?limit=1',
  timeoutMs = 5000,
): Promise<{ stop(): Promise<ProbeFigures> }> {
  const worker = new Worker(PROBE, {
    eval: true,
    workerData: {
      url: cloud.url,
      ca: readFileSync(cloud.caFile, 'utf8'),
      token: cloud.adminToken,
      path,
      timeoutMs,
    },
  });
  const result = new Promise<{ latencies: number[]; errors: number }>((resolve, reject) => {
    worker.on('message', (m: { latencies?: number[]; errors?: number }) => {
      if (m.latencies) resolve({ latencies: m.latencies, errors: m.errors ?? 0 });
    });
    worker.on('error', reject);
  });
  await new Promise<void>((resolve) => worker.once('message', () => resolve()));
  return {
    async stop() {
      worker.postMessage('stop');
      const { latencies, errors } = await result;
      await worker.terminate();
      const sorted = [...latencies].sort((a, b) => a - b);
      return {
        count: sorted.length,
        errors,
        p50: Math.round(percentile(sorted, 50) * 10) / 10,
        p99: Math.round(percentile(sorted, 99) * 10) / 10,
        max: Math.round((sorted[sorted.length - 1] ?? Number.NaN) * 10) / 10,
      };
    },
  };
}

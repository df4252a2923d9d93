#!/usr/bin/env node
/**
 * `posagent` entry point. `posagent status …` is answered by cli/posagent-status.ts without
 * loading the argument parser — a separate one-module bundle, chosen here before anything else
 * loads (its URL is computed, so the bundler leaves it out of the shared chunks); everything
 * else, and any status call it cannot answer cleanly, goes through the full CLI (cli/commands.ts).
 */
type StatusPath = typeof import('./posagent-status.js');

const argv = process.argv.slice(2);
const answered =
  argv[0] === 'status' &&
  (await ((await import(new URL('./posagent-status.js', import.meta.url).href)) as StatusPath).answerStatus(
    argv,
  ));
if (!answered) await import('./commands.js');

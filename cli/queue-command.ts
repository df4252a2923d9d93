import { openStoreReadOnly } from '../agent/agent-store.js';
import { askDaemon } from '../agent/local-api/local-api-client.js';
import { resolvePaths } from '../agent/settings.js';
import { listTransactions } from '../agent/transactions/transaction-list.js';
import { type TransactionRecord, toRecord } from '../agent/transactions/transaction-record.js';
import { parseErrorBody } from '../protocol/refusal.js';
import { requireEnrolled } from './enrolled.js';
import { CommandError, ExitCode, type Output } from './output.js';

type ListDoc = ReturnType<typeof listTransactions>;

/** `posagent queue [list | show ID | flush]`: through the daemon, or the store read-only when it is down. */
export async function queueCommand(
  action: string,
  id: string | undefined,
  opts: { stateDir?: string; runtimeDir?: string; state?: string; limit: number },
  out: Output,
): Promise<number> {
  const paths = resolvePaths(opts, process.env);
  if (action === 'show' && !id)
    throw new CommandError('usage', 'queue show needs a transaction id', ExitCode.usage);
  // The same answer with the daemon up or down: a terminal that is not enrolled has no queue.
  await requireEnrolled(paths);
  const viaDaemon = <T>(method: string, path: string) => askDaemon<T>(paths.socketPath, method, path);
  const fail = (body: unknown, status: number): never => {
    const e = parseErrorBody(body);
    throw new CommandError(
      e?.code ?? 'failed',
      e?.message ?? `the daemon answered ${status}`,
      ExitCode.failed,
    );
  };

  if (action === 'flush') {
    const r = await viaDaemon<{ link: string; queue: { stored: number } }>('POST', '/v1/queue/flush');
    if (!r)
      throw new CommandError(
        'daemon_not_running',
        'the daemon is not running: nothing can be forwarded now',
        ExitCode.daemonNotRunning,
      );
    if (r.status !== 200) fail(r.body, r.status);
    out.result(
      r.body,
      () =>
        `Forwarding now (link ${r.body.link}); ${r.body.queue.stored} transaction(s) not yet with the cloud.`,
    );
    return ExitCode.ok;
  }

  const reader = () => {
    const s = openStoreReadOnly(paths.dbFile);
    if (!s?.transactions)
      throw new CommandError('no_store', `no transaction store in ${paths.stateDir} yet`, ExitCode.failed);
    return s;
  };

  if (action === 'show') {
    if (!id) throw new CommandError('usage', 'queue show needs a transaction id', ExitCode.usage);
    let record: TransactionRecord;
    const r = await viaDaemon<TransactionRecord>('GET', `/v1/transactions/${encodeURIComponent(id)}`);
    if (r) {
      if (r.status !== 200) fail(r.body, r.status);
      record = r.body;
    } else {
      const s = reader();
      const row = s.transactions!.get(id);
      s.close();
      if (!row) throw new CommandError('not_found', `no transaction ${id}`, ExitCode.failed);
      record = toRecord(row);
    }
    out.result(record, () =>
      Object.entries(record)
        .map(([k, v]) => `${k.padEnd(10)} ${typeof v === 'object' ? JSON.stringify(v) : v}`)
        .join('\n'),
    );
    return ExitCode.ok;
  }

  if (action !== 'list')
    throw new CommandError('usage', `unknown queue action "${action}" (list, show, flush)`, ExitCode.usage);
  const query = new URLSearchParams({
    limit: String(opts.limit),
    ...(opts.state ? { state: opts.state } : {}),
  });
  let doc: ListDoc;
  const r = await viaDaemon<ListDoc>('GET', `/v1/transactions?${query}`);
  if (r) {
    if (r.status !== 200) fail(r.body, r.status);
    doc = r.body;
  } else {
    const s = reader();
    try {
      doc = listTransactions(s.transactions!, query);
    } catch (err) {
      throw new CommandError('usage', (err as Error).message, ExitCode.usage);
    } finally {
      s.close();
    }
  }
  out.result(doc, () =>
    [
      `${doc.queue.stored} not yet with the cloud${doc.queue.oldestAt ? `, oldest stored ${doc.queue.oldestAt}` : ''}.`,
      ...doc.data.map(
        (t) =>
          `${String(t.seq).padStart(6)}  ${t.id}  ${String(t.amount).padStart(9)} ${t.currency}  ${t.state.padEnd(10)} ${t.offline ? 'offline' : ''}`,
      ),
    ].join('\n'),
  );
  return ExitCode.ok;
}

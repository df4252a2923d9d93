import type { IncomingMessage } from 'node:http';

/** A body that is not JSON (the QR PNG, a release artifact). */
export class RawBody {
  constructor(
    readonly contentType: string,
    readonly body: Buffer,
    readonly status = 200,
    readonly headers: Record<string, string> = {},
  ) {}
}

/** A file to stream as the answer (a release artifact), honouring `Range`. */
export class FileBody {
  constructor(
    readonly file: string,
    readonly contentType: string,
  ) {}
}

/** Who may call a route: the admin token, anyone (enrollment), or a terminal by its client certificate. */
export type Access = 'admin' | 'public' | 'terminal';

export interface Route {
  method: string;
  pattern: RegExp;
  access: Access;
  /** 201 Created instead of 200. */
  created?: boolean;
  handle(ctx: {
    req: IncomingMessage;
    params: string[];
    query: URLSearchParams;
    body(): Promise<unknown>;
    /** The terminal id of a `terminal` route's caller. */
    terminalId: string;
  }): unknown;
}

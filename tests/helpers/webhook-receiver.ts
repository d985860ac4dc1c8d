/**
 * A booking system's webhook endpoint for tests: node:http on 127.0.0.1 (ephemeral port) that records
 * every request (raw body, headers, parsed JSON) and answers with a status the test can change.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WebhookRequest {
  raw: string;
  /** The request target as sent: path and query string. */
  url: string;
  headers: IncomingHttpHeaders;
  body: any;
  /** Status the receiver answered with. */
  status: number;
  receivedAt: number;
}

export interface WebhookReceiver {
  url: string;
  requests: WebhookRequest[];
  /** Status for the following requests (default 200). */
  status: number;
  /** Requests whose JSON body matches. */
  matching(pred: (body: any, r: WebhookRequest) => boolean): WebhookRequest[];
  /** Waits until at least `count` requests match (default timeout 10 s). */
  waitFor(pred: (body: any, r: WebhookRequest) => boolean, count?: number, timeoutMs?: number): Promise<WebhookRequest[]>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(path = '/hooks/kurir'): Promise<WebhookReceiver> {
  const requests: WebhookRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: any = null;
      try {
        body = JSON.parse(raw);
      } catch {
        body = null;
      }
      const status = (req.url ?? '').split('?')[0] === path ? r.status : 404;
      requests.push({ raw, url: req.url ?? '', headers: req.headers, body, status, receivedAt: Date.now() });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const r: WebhookReceiver = {
    url: `http://127.0.0.1:${port}${path}`,
    requests,
    status: 200,
    matching: (pred) => requests.filter((x) => pred(x.body, x)),
    async waitFor(pred, count = 1, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const hits = r.matching(pred);
        if (hits.length >= count) return hits;
        if (Date.now() > end) {
          const seen = requests.map((x) => `${x.status} ${x.body?.type} ${x.body?.id}`).join('\n  ');
          throw new Error(`webhook receiver: ${hits.length}/${count} matching requests after ${timeoutMs} ms; got:\n  ${seen || '(none)'}`);
        }
        await new Promise((res) => setTimeout(res, 50));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return r;
}

/**
 * The CLI's admin client against a real HTTP server on loopback that records what it is asked: a gateway URL
 * with a path (a reverse proxy serving Kurir under /kurir/) keeps its path, so the admin key goes to the
 * gateway and not to whatever the proxy serves at /v1/… of the same host.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../../src/cli/http-client.js';

let server: Server;
let base = '';
const seen: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.url ?? '');
    res.setHeader('content-type', 'application/json');
    res.end('{"items":[]}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe('AdminClient', () => {
  it.each([
    ['', '/v1/credentials?limit=1'],
    ['/', '/v1/credentials?limit=1'],
    ['/kurir', '/kurir/v1/credentials?limit=1'],
    ['/kurir/', '/kurir/v1/credentials?limit=1'],
  ])('with the URL path %j asks for %s', async (path, expected) => {
    seen.length = 0;
    await new AdminClient({ url: `${base}${path}`, key: 'k' }).get('/v1/credentials?limit=1');
    expect(seen).toEqual([expected]);
  });
});

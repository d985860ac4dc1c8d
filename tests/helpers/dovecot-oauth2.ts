/**
 * OAuth2 for the test Dovecot: a token introspection endpoint (RFC 7662) on loopback standing in for
 * Google's or Microsoft's, and the `passdb { driver = oauth2 }` settings that make Dovecot 2.3 accept
 * XOAUTH2 / OAUTHBEARER logins by asking it. Dovecot POSTs `token=…` (form-encoded) and accepts the login
 * when the answer has `"active": true` and a `username` equal to the IMAP user name.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The Dovecot oauth2 passdb file (dovecot-oauth2.conf.ext) for an introspection URL. */
export function oauth2PassdbConfig(introspectionUrl: string): string {
  return `introspection_mode = post
introspection_url = ${introspectionUrl}
username_attribute = username
active_attribute = active
active_value = true
`;
}

export interface IntrospectionServer {
  url: string;
  /** Issues a new access token for `user` (what a provider's token endpoint would hand the token command). */
  issue(user: string): string;
  /** Makes a token inactive, as a provider does when it expires or is revoked. */
  revoke(token: string): void;
  /** Every introspection request: the token asked about and whether it was active. */
  readonly requests: Array<{ token: string; active: boolean }>;
  close(): Promise<void>;
}

/** Starts the introspection endpoint on 127.0.0.1 (a free port); `url` is the full endpoint URL. */
export async function startIntrospectionServer(): Promise<IntrospectionServer> {
  const tokens = new Map<string, string>();
  const requests: Array<{ token: string; active: boolean }> = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('token') ?? '';
      const user = tokens.get(token);
      requests.push({ token, active: user !== undefined });
      const answer = JSON.stringify(user !== undefined ? { active: true, username: user, scope: 'https://mail.google.com/' } : { active: false });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
      res.end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/introspect`,
    issue(user) {
      const token = `ya29.${randomBytes(24).toString('base64url')}`;
      tokens.set(token, user);
      return token;
    },
    revoke(token) {
      tokens.delete(token);
    },
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/load.js';
import { isLoopbackHost } from '../../../src/config/mode.js';
import { smarthostTls } from '../../../src/config/smarthost-tls.js';

const load = (smarthost: Record<string, unknown>, delivery: Record<string, unknown> = {}) =>
  loadConfig({ file: 'config/default.yaml', overrides: { delivery: { ...delivery, smarthost } } });

const ESP = { host: 'smtp.esp.example', port: 587, user: 'relay', pass: 'secret-password' };

describe('smarthost credentials and TLS', () => {
  it('requires and verifies TLS by default when credentials are set', () => {
    const c = load(ESP);
    expect(smarthostTls(c.delivery.smarthost!, c.delivery)).toEqual({ secure: false, requireTls: true, verifyTls: true });
  });

  it('keeps the old defaults without credentials (a local relay such as Mailpit)', () => {
    const c = load({ host: 'mailpit', port: 1025 });
    expect(smarthostTls(c.delivery.smarthost!, c.delivery)).toEqual({ secure: false, requireTls: false, verifyTls: false });
    const verified = load({ host: 'mailpit', port: 1025 }, { verifyTls: true });
    expect(smarthostTls(verified.delivery.smarthost!, verified.delivery).verifyTls).toBe(true);
  });

  it('refuses to start with credentials over optional TLS to a remote host, naming the key and the fix', () => {
    const err = (() => {
      try {
        load({ ...ESP, requireTls: false });
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.message).toMatch(/delivery\.smarthost\.requireTls = false: the smarthost password for smtp\.esp\.example would be sent in clear/);
    expect(err!.message).toMatch(
      /remove the key \(TLS is then required\), or use secure: true \(port 465\), or write delivery\.smarthost\.allowInsecureAuth: true/,
    );
  });

  it('refuses credentials over an unverified certificate to a remote host, also with implicit TLS', () => {
    expect(() => load({ ...ESP, verifyTls: false })).toThrowError(
      /delivery\.smarthost\.verifyTls = false: the smarthost password .* remove the key \(the certificate is then verified against smtp\.esp\.example\)/,
    );
    expect(() => load({ ...ESP, port: 465, secure: true, verifyTls: false })).toThrowError(/delivery\.smarthost\.verifyTls = false/);
    // implicit TLS with the default verification is fine, whatever requireTls says
    expect(load({ ...ESP, port: 465, secure: true, requireTls: false }).delivery.smarthost!.secure).toBe(true);
  });

  it('accepts the written opt-out, and loopback relays without it', () => {
    expect(load({ ...ESP, requireTls: false, verifyTls: false, allowInsecureAuth: true }).delivery.smarthost!.allowInsecureAuth).toBe(true);
    expect(load({ ...ESP, host: '127.0.0.1', requireTls: false, verifyTls: false }).delivery.smarthost!.host).toBe('127.0.0.1');
    expect(load({ ...ESP, host: 'localhost', requireTls: false }).delivery.smarthost!.host).toBe('localhost');
  });

  it('refuses a password without a user', () => {
    expect(() => load({ host: 'smtp.esp.example', pass: 'secret' })).toThrowError(/delivery\.smarthost\.pass is set without delivery\.smarthost\.user/);
  });

  it('refuses a user without a password: every delivery would try AUTH with an empty one and fail', () => {
    // e.g. KURIR_DELIVERY__SMARTHOST__PASS forgotten, or given as '' by an unset variable in a compose file.
    for (const smarthost of [
      { host: 'smtp.esp.example', user: 'relay' },
      { host: 'smtp.esp.example', user: 'relay', pass: '' },
    ]) {
      expect(() => load(smarthost)).toThrowError(
        /^ {2}delivery\.smarthost\.user is set without delivery\.smarthost\.pass: set the password \(KURIR_DELIVERY__SMARTHOST__PASS\), or remove user to relay without AUTH$/m,
      );
    }
  });

  it('also refuses through KURIR_* environment overrides', () => {
    const env = {
      KURIR_DELIVERY__SMARTHOST__HOST: 'smtp.esp.example',
      KURIR_DELIVERY__SMARTHOST__USER: 'relay',
      KURIR_DELIVERY__SMARTHOST__PASS: 'secret',
      KURIR_DELIVERY__SMARTHOST__REQUIRE_TLS: 'false',
    };
    expect(() => loadConfig({ file: 'config/default.yaml', env })).toThrowError(/delivery\.smarthost\.requireTls = false/);
  });

  it('knows loopback hosts', () => {
    for (const h of ['localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]', 'relay.localhost']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['10.0.0.1', 'smtp.esp.example', '::2', 'localhost.example.com', '128.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });
});

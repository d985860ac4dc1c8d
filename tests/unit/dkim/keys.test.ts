import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSigningKey, dnsRecordFor, generateDkimKey, loadOrCreateKeyFile, loadPrivateKey } from '../../../src/dkim/keys.js';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

describe('generateDkimKey / loadPrivateKey', () => {
  it('round-trips an RSA key: PEM loads back with the same public key, published as SPKI DER', () => {
    const gen = generateDkimKey('rsa');
    expect(gen.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);

    const loaded = loadPrivateKey(gen.privateKeyPem);
    expect(loaded).toEqual({ pem: gen.privateKeyPem, algorithm: 'rsa', bits: 2048, publicKeyBase64: gen.publicKeyBase64 });

    const pub = createPublicKey({ key: Buffer.from(gen.publicKeyBase64, 'base64'), format: 'der', type: 'spki' });
    expect(pub.asymmetricKeyType).toBe('rsa');
    const data = Buffer.from('canonicalized header');
    expect(verify('sha256', data, pub, sign('sha256', data, createPrivateKey(gen.privateKeyPem)))).toBe(true);
  });

  it('honours the requested RSA size', () => {
    expect(loadPrivateKey(generateDkimKey('rsa', 1024).privateKeyPem).bits).toBe(1024);
  });

  it('publishes an ed25519 public key as the raw 32 bytes that verify its signatures (RFC 8463)', () => {
    const gen = generateDkimKey('ed25519');
    const raw = Buffer.from(gen.publicKeyBase64, 'base64');
    expect(raw).toHaveLength(32);

    const loaded = loadPrivateKey(gen.privateKeyPem);
    expect(loaded.algorithm).toBe('ed25519');
    expect(loaded.bits).toBeUndefined();
    expect(loaded.publicKeyBase64).toBe(gen.publicKeyBase64);

    const pub = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    const digest = Buffer.alloc(32, 7);
    expect(verify(null, digest, pub, sign(null, digest, createPrivateKey(gen.privateKeyPem)))).toBe(true);
  });

  it('refuses RSA sizes below 1024 bits and unknown algorithms', () => {
    expect(() => generateDkimKey('rsa', 512)).toThrow(/at least 1024 bits, got 512/);
    expect(() => generateDkimKey('dsa' as never)).toThrow(/Unsupported DKIM algorithm "dsa"/);
  });

  it('keeps the parsed KeyObject for signing', () => {
    const key = createSigningKey(generateDkimKey('ed25519').privateKeyPem);
    expect(key.algorithm).toBe('ed25519');
    expect(key.keyObject.type).toBe('private');
  });
});

describe('loadPrivateKey rejects what it cannot sign with, saying why', () => {
  it('text that is not PEM', () => {
    expect(() => loadPrivateKey('hello')).toThrow('DKIM private key is not PEM text');
    expect(() => loadPrivateKey('')).toThrow(/not PEM text/);
  });

  it('a public key', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    expect(() => loadPrivateKey(publicKey.export({ type: 'spki', format: 'pem' }) as string)).toThrow(/holds a public key, not a private key/);
  });

  it('a PEM block with garbage inside', () => {
    expect(() => loadPrivateKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')).toThrow(/DKIM private key could not be parsed: /);
  });

  it('an encrypted key', () => {
    const { privateKey } = generateKeyPairSync('ed25519', {
      privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    expect(() => loadPrivateKey(privateKey)).toThrow(/is encrypted/);
  });

  it('an RSA key shorter than 1024 bits', () => {
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 512,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    expect(() => loadPrivateKey(privateKey)).toThrow('DKIM RSA private key is 512 bits; at least 1024 are required');
  });

  it('a key type DKIM does not define', () => {
    const { privateKey } = generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    expect(() => loadPrivateKey(privateKey)).toThrow(/type "ec" is not supported \(expected rsa or ed25519\)/);
  });
});

describe('dnsRecordFor', () => {
  it('formats rsa and ed25519 records', () => {
    expect(dnsRecordFor('rsa', 'MIIBIjAN')).toBe('v=DKIM1; k=rsa; p=MIIBIjAN');
    const ed = generateDkimKey('ed25519').publicKeyBase64;
    expect(dnsRecordFor('ed25519', ed)).toBe(`v=DKIM1; k=ed25519; p=${ed}`);
  });

  it('refuses a value that is not base64', () => {
    expect(() => dnsRecordFor('rsa', '')).toThrow(/base64/);
    expect(() => dnsRecordFor('rsa', 'abc; k=x')).toThrow(/base64/);
  });
});

describe('loadOrCreateKeyFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kurir-dkim-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a missing key file with mode 0600 (and its parent directories), then loads it unchanged', async () => {
    const path = join(dir, 'nested', 'keys', 'example.test.ed25519.pem');
    const first = await loadOrCreateKeyFile(path, 'ed25519');
    expect(first.created).toBe(true);
    expect(first.algorithm).toBe('ed25519');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readFile(path, 'utf8')).toBe(first.pem);

    const second = await loadOrCreateKeyFile(path, 'ed25519');
    expect(second.created).toBe(false);
    expect(second.publicKeyBase64).toBe(first.publicKeyBase64);
  });

  it('creates RSA key files of 2048 bits', async () => {
    const created = await loadOrCreateKeyFile(join(dir, 'rsa.pem'), 'rsa');
    expect(created).toMatchObject({ created: true, algorithm: 'rsa', bits: 2048 });
  });

  it('refuses an existing file holding the other algorithm, naming the file', async () => {
    const path = join(dir, 'mismatch.pem');
    await writeFile(path, generateDkimKey('ed25519').privateKeyPem, { mode: 0o600 });
    await expect(loadOrCreateKeyFile(path, 'rsa')).rejects.toThrow(`${path}: holds an ed25519 key but rsa is configured`);
  });

  it('refuses an existing file that is not a key instead of overwriting it', async () => {
    const path = join(dir, 'broken.pem');
    await writeFile(path, 'not a key\n', { mode: 0o600 });
    await expect(loadOrCreateKeyFile(path, 'rsa')).rejects.toThrow(`${path}: DKIM private key is not PEM text`);
    expect(await readFile(path, 'utf8')).toBe('not a key\n');
  });
});

import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { feedbackIdFor, setFeedbackId } from '../../../src/intake/feedback-id.js';

const domains = [
  { name: 'example.test', dkim: [], feedbackId: { senderId: 'kurir', verification: 'verification:booking' } },
  { name: 'other.test', dkim: [] },
];

describe('Feedback-ID', () => {
  it('is <class prefix>:<senderId> for a configured domain and class, else null', () => {
    expect(feedbackIdFor(domains, 'example.test', 'verification')).toBe('verification:booking:kurir');
    expect(feedbackIdFor(domains, 'example.test', 'bulk')).toBeNull();
    expect(feedbackIdFor(domains, 'other.test', 'verification')).toBeNull();
  });

  it('replaces every client Feedback-ID field, folded lines included, and keeps the rest byte for byte', () => {
    const raw = Buffer.from('From: a@example.test\r\nfeedback-id: a:b\r\n c:d\r\nSubject: x\r\n  y\r\nFEEDBACK-ID : z\r\n\r\nbody\r\n\r\nmore\r\n', 'latin1');
    const out = setFeedbackId(raw, 'verification:booking:kurir').toString('latin1');
    expect(out).toBe('From: a@example.test\r\nSubject: x\r\n  y\r\nFeedback-ID: verification:booking:kurir\r\n\r\nbody\r\n\r\nmore\r\n');
  });

  it('refuses a malformed configuration, naming the key', () => {
    const load = (feedbackId: unknown): unknown =>
      loadConfig({ file: 'config/default.yaml', overrides: { domains: [{ name: 'example.test', dkim: [], feedbackId }] } });
    expect(() => load({ senderId: 'a:b', verification: 'v' })).toThrowError(/domains\.0\.feedbackId\.senderId/);
    expect(() => load({ senderId: 'kurir', bulk: 'a:b:c:d' })).toThrowError(/domains\.0\.feedbackId\.bulk/);
    expect(() => load({ senderId: 'kurir', bulk: 'has space' })).toThrowError(/domains\.0\.feedbackId\.bulk/);
    expect(() => load({ senderId: 'kurir', transactional: 'x' })).toThrowError(/feedbackId: unknown key\(s\) transactional/);
  });

  it('requires scoring.rspamd.sendingIp when scoring is enabled', () => {
    expect(() => loadConfig({ file: 'config/default.yaml', overrides: { scoring: { rspamd: { enabled: true } } } })).toThrowError(/scoring\.rspamd\.sendingIp/);
    expect(() => loadConfig({ file: 'config/default.yaml', overrides: { scoring: { rspamd: { enabled: true, sendingIp: '300.1.1.1' } } } })).toThrowError(
      /scoring\.rspamd\.sendingIp/,
    );
    const ok = loadConfig({ file: 'config/default.yaml', overrides: { scoring: { rspamd: { enabled: true, sendingIp: '192.0.2.10' } } } });
    expect(ok.scoring.rspamd).toMatchObject({ enabled: true, sendingIp: '192.0.2.10', sampleEvery: 100, threshold: null, refuse: true });
  });
});

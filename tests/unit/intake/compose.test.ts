/**
 * composeMessage's Message-ID and MIME boundaries, which it gives nodemailer instead of letting it draw them:
 * a Message-ID at the From domain, and boundaries unique per message, so two messages never share one.
 */
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { composeMessage } from '../../../src/intake/compose.js';

const message = {
  from: 'Passport Office <noreply@example.test>',
  to: ['applicant@gmail.test'],
  subject: 'Code',
  text: 'Your code: 123456',
  html: '<p>Your code: <b>123456</b></p>',
};

describe('composeMessage', () => {
  it('gives every message its own Message-ID at the From domain and its own multipart boundary', async () => {
    const [a, b] = await Promise.all([composeMessage(message), composeMessage(message)]);
    const [pa, pb] = await Promise.all([simpleParser(a.raw), simpleParser(b.raw)]);
    expect(pa.messageId).toMatch(/^<[0-9a-f-]{36}@example\.test>$/);
    expect(pb.messageId).toMatch(/@example\.test>$/);
    expect(pa.messageId).not.toBe(pb.messageId);
    const boundary = (raw: Buffer) => /boundary="([^"]+)"/.exec(raw.toString('utf8'))?.[1];
    expect(boundary(a.raw)).toBeDefined();
    expect(boundary(a.raw)).not.toBe(boundary(b.raw));
    expect(pa.text?.trim()).toBe('Your code: 123456');
    expect(pa.html).toContain('<b>123456</b>');
  });

  it('nests parts with attachments under distinct boundaries that the parser splits back', async () => {
    const withFile = { ...message, attachments: [{ filename: 'a.txt', content: Buffer.from('hello').toString('base64'), contentType: 'text/plain' }] };
    const { raw } = await composeMessage(withFile);
    const boundaries = [...raw.toString('utf8').matchAll(/boundary="([^"]+)"/g)].map((m) => m[1]);
    expect(boundaries.length).toBe(2);
    expect(new Set(boundaries).size).toBe(2);
    const parsed = await simpleParser(raw);
    expect(parsed.attachments.map((x) => [x.filename, x.content.toString()])).toEqual([['a.txt', 'hello']]);
    expect(parsed.text?.trim()).toBe('Your code: 123456');
  });
});

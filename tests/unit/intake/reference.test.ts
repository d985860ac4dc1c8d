import { describe, expect, it } from 'vitest';
import { parseHeaders } from '../../../src/intake/header-block.js';
import { REFERENCE_HEADER, referenceOf } from '../../../src/intake/reference.js';

const headers = (block: string) => parseHeaders(block.replace(/\n/g, '\r\n'));

describe('referenceOf', () => {
  it('takes the configured metadata key first, trimmed, and keeps the metadata as given', () => {
    const metadata = { bookingRef: '  AB-12 ', other: 'x' };
    expect(referenceOf('bookingRef', metadata, headers(`${REFERENCE_HEADER}: FROM-HEADER`))).toEqual({ reference: 'AB-12', metadata });
  });

  it('copies an X-Kurir-Reference header into the metadata when the key is absent', () => {
    expect(referenceOf('bookingRef', { other: 'x' }, headers('From: a@b.test\nx-kurir-reference:  H-9'))).toEqual({
      reference: 'H-9',
      metadata: { other: 'x', bookingRef: 'H-9' },
    });
    expect(referenceOf('reference', undefined, headers('X-Kurir-Reference: H-10'))).toEqual({ reference: 'H-10', metadata: { reference: 'H-10' } });
  });

  it('indexes nothing without a key, or with a blank header', () => {
    expect(referenceOf(null, { reference: 'A' }, headers('X-Kurir-Reference: B'))).toEqual({ metadata: { reference: 'A' } });
    expect(referenceOf('reference', { other: 'x' }, headers('X-Kurir-Reference:   '))).toEqual({ metadata: { other: 'x' } });
    expect(referenceOf('reference', undefined, [])).toEqual({ metadata: undefined });
  });

  it('refuses a blank metadata reference (until 2 Dec 2026 it was taken as none)', () => {
    for (const blank of ['', '  ']) {
      expect(() => referenceOf('reference', { reference: blank }, [])).toThrow(/^metadata\.reference: a booking reference of 1 to 256 printable characters$/);
    }
  });

  it('refuses a reference that is too long or holds control characters, naming where it came from', () => {
    expect(() => referenceOf('reference', { reference: 'x'.repeat(257) }, [])).toThrow(/metadata\.reference: a booking reference of 1 to 256/);
    expect(() => referenceOf('reference', { reference: 'a\u0007b' }, [])).toThrow(/metadata\.reference/);
    expect(() => referenceOf('reference', undefined, headers(`X-Kurir-Reference: ${'y'.repeat(300)}`))).toThrow(/X-Kurir-Reference/);
  });
});

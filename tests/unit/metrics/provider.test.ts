import { describe, expect, it } from 'vitest';
import { DEFAULT_PROVIDER_RULES, OTHER_PROVIDER, createProviderMap } from '../../../src/metrics/provider.js';

describe('createProviderMap defaults', () => {
  const map = createProviderMap();

  it.each([
    ['gmail.com', 'gmail'],
    ['googlemail.com', 'gmail'],
    ['GMAIL.COM', 'gmail'],
    ['gmail.com.', 'gmail'],
    ['outlook.com', 'microsoft'],
    ['hotmail.com', 'microsoft'],
    ['hotmail.co.uk', 'microsoft'],
    ['hotmail.fr', 'microsoft'],
    ['live.com', 'microsoft'],
    ['msn.com', 'microsoft'],
    ['yahoo.com', 'yahoo'],
    ['yahoo.co.jp', 'yahoo'],
    ['ymail.com', 'yahoo'],
    ['aol.com', 'yahoo'],
    ['icloud.com', 'apple'],
    ['me.com', 'apple'],
    ['mac.com', 'apple'],
    ['example.com', 'other'],
    ['notgmail.com', 'other'],
    ['gmail.com.evil.org', 'other'],
    ['mail.gmail.com', 'other'],
    ['', 'other'],
  ])('byDomain(%j) → %s', (domain, provider) => {
    expect(map.byDomain(domain)).toBe(provider);
  });

  it('accepts a full address and uses the domain part', () => {
    expect(map.byDomain('Someone@GMail.com')).toBe('gmail');
    expect(map.byDomain('"a@b"@icloud.com')).toBe('apple');
  });

  it.each([
    ['gmail-smtp-in.l.google.com', 'gmail'],
    ['alt1.gmail-smtp-in.l.google.com.', 'gmail'],
    ['aspmx.l.google.com', 'gmail'],
    ['gmail-smtp-in.googlemail.com', 'gmail'],
    ['example-com.mail.protection.outlook.com', 'microsoft'],
    ['hotmail-com.olc.protection.outlook.com', 'microsoft'],
    ['mta5.am0.yahoodns.net', 'yahoo'],
    ['MX01.MAIL.ICLOUD.COM', 'apple'],
    ['google.com', 'other'],
    ['mx.google.com.evil.org', 'other'],
    ['mx.example.net', 'other'],
  ])('byMx(%j) → %s', (mx, provider) => {
    expect(map.byMx(mx)).toBe(provider);
  });

  it('lists every label value it can return, other last', () => {
    expect(map.names()).toEqual(['gmail', 'microsoft', 'yahoo', 'apple', 'other']);
    const names = map.names();
    names.push('mutated');
    expect(map.names()).not.toContain('mutated');
  });

  it('does not expose mutable defaults', () => {
    expect(Object.isFrozen(DEFAULT_PROVIDER_RULES)).toBe(true);
    expect(OTHER_PROVIDER).toBe('other');
  });
});

describe('createProviderMap custom rules', () => {
  it('checks custom rules first and adds their providers to names()', () => {
    const map = createProviderMap([
      { provider: 'gmx', domains: ['gmx.*', 'web.de'], mx: ['*.gmx.net', '*.web.de'] },
      { provider: 'workspace', mx: ['aspmx.l.google.com'] },
    ]);
    expect(map.byDomain('gmx.de')).toBe('gmx');
    expect(map.byDomain('gmx.net')).toBe('gmx');
    expect(map.byDomain('web.de')).toBe('gmx');
    expect(map.byMx('mx00.emig.gmx.net')).toBe('gmx');
    expect(map.byMx('aspmx.l.google.com')).toBe('workspace');
    expect(map.byMx('alt1.aspmx.l.google.com')).toBe('gmail');
    expect(map.names()).toEqual(['gmx', 'workspace', 'gmail', 'microsoft', 'yahoo', 'apple', 'other']);
  });

  it('can drop the built-in rules', () => {
    const map = createProviderMap([{ provider: 'corp', domains: ['*.corp.example'] }], {
      includeDefaults: false,
    });
    expect(map.byDomain('gmail.com')).toBe('other');
    expect(map.byDomain('eu.corp.example')).toBe('corp');
    expect(map.names()).toEqual(['corp', 'other']);
  });

  it('treats regex characters in patterns literally', () => {
    const map = createProviderMap([{ provider: 'x', domains: ['a-b.example'] }], { includeDefaults: false });
    expect(map.byDomain('a-b.example')).toBe('x');
    expect(map.byDomain('aXb.example')).toBe('other');
    expect(map.byDomain('a-bxexample')).toBe('other');
  });

  it('rejects invalid provider names and patterns with an actionable message', () => {
    expect(() => createProviderMap([{ provider: 'Bad Name', domains: ['x.com'] }])).toThrow(/invalid provider name/);
    expect(() => createProviderMap([{ provider: '', domains: ['x.com'] }])).toThrow(/invalid provider name/);
    expect(() => createProviderMap([{ provider: 'ok', domains: ['(.*)'] }])).toThrow(/invalid pattern/);
    expect(() => createProviderMap([{ provider: 'ok', mx: ['a**b'] }])).toThrow(/invalid pattern/);
  });
});

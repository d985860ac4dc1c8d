/**
 * Buckets recipient domains and MX hosts into a small, fixed set of mailbox
 * providers. Every metric that is "per destination" uses the provider name as
 * its label, never the domain or the address, so label cardinality stays
 * bounded by the number of configured providers (+ "other") no matter how many
 * distinct recipients the gateway sees.
 *
 * Patterns are case-insensitive globs:
 *   - `gmail.com`       exact domain
 *   - `*.google.com`    any subdomain of google.com (not google.com itself)
 *   - `hotmail.*`       hotmail under any suffix (hotmail.com, hotmail.co.uk)
 * A `*` matches one or more characters, dots included.
 */

export interface ProviderRule {
  /** Label value used in metrics, e.g. "gmail". Lowercase letters, digits, `_` and `-`. */
  provider: string;
  /** Recipient-domain patterns (the part after `@`). */
  domains?: string[];
  /** MX host-name patterns (as returned by the MX lookup). */
  mx?: string[];
}

export interface ProviderMap {
  /** Provider for a recipient domain (an address is accepted too: the part after the last `@` is used). */
  byDomain(recipientDomain: string): string;
  /** Provider for an MX host name (a trailing dot is ignored). */
  byMx(mxHost: string): string;
  /** Every label value this map can return, "other" included (the cardinality bound). */
  names(): string[];
}

export interface ProviderMapOptions {
  /** Append the built-in gmail/microsoft/yahoo/apple rules after the given rules. Default true. */
  includeDefaults?: boolean;
}

export const OTHER_PROVIDER = 'other';

export const DEFAULT_PROVIDER_RULES: readonly ProviderRule[] = Object.freeze([
  {
    provider: 'gmail',
    domains: ['gmail.com', 'googlemail.com'],
    mx: ['*.google.com', '*.googlemail.com'],
  },
  {
    provider: 'microsoft',
    domains: ['outlook.com', 'hotmail.*', 'live.com', 'msn.com'],
    mx: ['*.outlook.com', '*.protection.outlook.com'],
  },
  {
    provider: 'yahoo',
    domains: ['yahoo.*', 'ymail.com', 'aol.com', 'rocketmail.com'],
    mx: ['*.yahoodns.net'],
  },
  {
    provider: 'apple',
    domains: ['icloud.com', 'me.com', 'mac.com'],
    mx: ['*.icloud.com'],
  },
]);

const PROVIDER_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const PATTERN = /^[a-z0-9*][a-z0-9.*-]*$/;

interface CompiledRule {
  provider: string;
  domains: RegExp[];
  mx: RegExp[];
}

function compilePattern(pattern: string, provider: string): RegExp {
  const p = normalizeHost(pattern);
  if (!PATTERN.test(p) || p.includes('**')) {
    throw new TypeError(
      `provider map: invalid pattern ${JSON.stringify(pattern)} for provider "${provider}" ` +
        '(use host names with optional "*" wildcards, e.g. "*.google.com" or "hotmail.*")',
    );
  }
  const source = p
    .split('*')
    .map((part) => part.replace(/[.-]/g, (c) => `\\${c}`))
    .join('.+');
  return new RegExp(`^${source}$`);
}

function normalizeHost(value: string): string {
  let v = value.trim().toLowerCase();
  if (v.startsWith('[') && v.endsWith(']')) v = v.slice(1, -1);
  while (v.endsWith('.')) v = v.slice(0, -1);
  return v;
}

function compileRules(rules: readonly ProviderRule[]): CompiledRule[] {
  return rules.map((rule, index) => {
    if (!rule || typeof rule.provider !== 'string' || !PROVIDER_NAME.test(rule.provider)) {
      throw new TypeError(
        `provider map: rule #${index} has an invalid provider name ${JSON.stringify(rule?.provider)} ` +
          '(lowercase letters, digits, "_" and "-", at most 63 characters)',
      );
    }
    return {
      provider: rule.provider,
      domains: (rule.domains ?? []).map((d) => compilePattern(d, rule.provider)),
      mx: (rule.mx ?? []).map((m) => compilePattern(m, rule.provider)),
    };
  });
}

/**
 * Create a provider map. Custom rules are checked first (first match wins), so
 * they can override or extend the defaults; anything unmatched is "other".
 */
export function createProviderMap(rules: readonly ProviderRule[] = [], opts: ProviderMapOptions = {}): ProviderMap {
  const all = opts.includeDefaults === false ? [...rules] : [...rules, ...DEFAULT_PROVIDER_RULES];
  const compiled = compileRules(all);
  const names = [...new Set([...compiled.map((r) => r.provider), OTHER_PROVIDER])];

  const match = (host: string, pick: (r: CompiledRule) => RegExp[]): string => {
    if (!host) return OTHER_PROVIDER;
    for (const rule of compiled) {
      for (const re of pick(rule)) {
        if (re.test(host)) return rule.provider;
      }
    }
    return OTHER_PROVIDER;
  };

  return Object.freeze({
    byDomain(recipientDomain: string): string {
      const raw = typeof recipientDomain === 'string' ? recipientDomain : '';
      const at = raw.lastIndexOf('@');
      return match(normalizeHost(at >= 0 ? raw.slice(at + 1) : raw), (r) => r.domains);
    },
    byMx(mxHost: string): string {
      return match(normalizeHost(typeof mxHost === 'string' ? mxHost : ''), (r) => r.mx);
    },
    names(): string[] {
      return [...names];
    },
  });
}

/**
 * The provider label of a delivered recipient, as the delivery metrics bucket it (src/delivery/stages/route.ts):
 * by recipient domain, else by the MX host that took it (`host` as the timeline writes it, "name [ip]:port"),
 * never by a smarthost, which says nothing about the destination. Confirmations and reports about a delivered
 * message (DSNs, complaints) use it, so their counts share the provider of the deliveries they are ratios of.
 */
export function deliveryProvider(providers: ProviderMap, recipient: string, host: string | undefined, smarthost: boolean): string {
  const byDomain = providers.byDomain(recipient);
  if (byDomain !== OTHER_PROVIDER || smarthost || !host) return byDomain;
  return providers.byMx(host.split(/[\s[:]/)[0]);
}

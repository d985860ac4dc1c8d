/**
 * Value shapes several configuration sections share: ports, durations, domain names and IP ranges
 * (schema.ts and the section schemas beside it build on them).
 */
import { isIP } from 'node:net';
import { z } from 'zod';

export const port = z.number().int().min(0).max(65535);
export const durationSeconds = z.number().positive();

/** A domain name such as example.com. */
export const domainName = z.string().regex(/^(?!-)[a-z0-9.-]+\.[a-z0-9-]+$/i, 'a domain name such as example.com');

/** An IPv4/IPv6 address or CIDR range, e.g. 192.0.2.0/24 or 2001:db8::/32. */
export const ipOrCidr = z.string().refine((v) => {
  const [ip, bits, extra] = v.split('/');
  const family = isIP(ip);
  if (!family || extra !== undefined) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}, 'an IP address or CIDR range such as 192.0.2.0/24');

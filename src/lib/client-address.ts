/**
 * Client addresses: loopback detection, and the unit a per-client limit counts — an IPv4 address, or the
 * /64 network of an IPv6 address (one client usually holds a whole /64, so counting single IPv6
 * addresses would let it rotate freely).
 */
import { BlockList, isIP } from 'node:net';

/** True for 127.0.0.0/8 and ::1, also in their IPv4-mapped IPv6 form. */
export function isLoopback(address: string | undefined): boolean {
  const a = (address ?? '').replace(/^::ffff:/i, '');
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** The eight 16-bit groups of an IPv6 address, in lower-case hex without leading zeros. */
function ipv6Groups(address: string): string[] {
  let text = address.toLowerCase();
  // A trailing dotted IPv4 part (::1.2.3.4) becomes two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail !== undefined ? Array<string>(8 - left.length - right.length).fill('0') : [];
  return [...left, ...fill, ...right].map((g) => Number.parseInt(g, 16).toString(16));
}

/**
 * The counting key of a client address: `192.0.2.7` (also from `::ffff:192.0.2.7`), `2001:db8:0:1::/64`
 * for any address in that IPv6 /64; anything that is not an IP address is returned as it is (lower case).
 */
export function clientKey(address: string | undefined): string {
  const raw = (address ?? '').trim();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(raw);
  if (mapped) return mapped[1];
  if (isIP(raw) !== 6) return raw.toLowerCase();
  const groups = ipv6Groups(raw.replace(/%.*$/, ''));
  return `${groups.slice(0, 4).join(':')}::/64`;
}

/** Whether a string is an IPv4 or IPv6 address (no brackets, no zone, no prefix length). */
export function isIpAddress(value: string): boolean {
  return isIP(value) !== 0;
}

/**
 * A matcher for a list of addresses and CIDR ranges (validated by the config schema), e.g.
 * `domainKeys.sendingIps` or `feedback.fblSources.ips`. An empty list matches nothing.
 */
export function createIpMatcher(entries: readonly string[]): (ip: string) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    const [ip, bits] = entry.split('/');
    const type = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip, type);
    else list.addSubnet(ip, Number(bits), type);
  }
  return (ip) => {
    const family = isIP(ip);
    return family !== 0 && entries.length > 0 && list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
  };
}

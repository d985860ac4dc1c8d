/**
 * Reverse DNS and HELO of the sending IPs: each address's PTR and its forward confirmation, the gateway's
 * HELO name (`hostname`, used from the addresses outside any pool), and for each source-IP pool address its
 * own HELO name, which must resolve to that address (and should be its PTR name).
 */
import { isDnsNotFound } from '../../delivery/resolver.js';
import { type DoctorCheck, type DoctorContext, dnsProblem, reverseName, type SendingAddress, sendingAddresses } from './report.js';

const WHY_RDNS =
  'Gmail, Yahoo and Microsoft require every sending IP to have a PTR record whose name resolves back to the IP (forward-confirmed reverse DNS); without it mail is rejected or throttled.';
const WHY_HELO =
  'Receivers check that the HELO name is a fully qualified name that resolves, ideally to the sending IP and matching its PTR; Gmail and Microsoft treat a bogus HELO as a spam signal.';

const bare = (name: string): string => name.toLowerCase().replace(/\.$/, '');
const qualified = (name: string): boolean => name.includes('.') && name !== 'localhost' && !name.endsWith('.localhost');
const addressRecord = (ip: string): string => (ip.includes(':') ? 'AAAA' : 'A');

async function addressesOf(ctx: DoctorContext, name: string): Promise<string[]> {
  const all = await Promise.all([ctx.resolver.resolve4(name).catch(() => []), ctx.resolver.resolve6(name).catch(() => [])]);
  return all.flat();
}

/** `rdns:<ip>`: a PTR whose name resolves back to the IP. The PTR names found are added to `ptrNames`. */
async function rdnsCheck(ctx: DoctorContext, a: SendingAddress, host: string, ptrNames: Map<string, string[]>): Promise<DoctorCheck> {
  const { ip } = a;
  const id = `rdns:${ip}`;
  if (a.range) {
    return {
      id,
      status: 'warn',
      summary: `${ip} is listed as a range: PTR cannot be checked`,
      why: WHY_RDNS,
      fix: 'list each sending IP on its own in domainKeys.sendingIps',
    };
  }
  const name = bare(a.helo ?? host);
  const fix = `ask the owner of ${ip} (your hosting provider) for ${reverseName(ip)}. IN PTR ${name}. and publish ${name}. IN ${addressRecord(ip)} ${ip}`;
  let names: string[];
  try {
    names = ((await ctx.resolver.resolve(reverseName(ip), 'PTR')) as string[]).map(bare);
  } catch (err) {
    return { id, status: isDnsNotFound(err) ? 'fail' : 'warn', summary: `${ip} has no PTR record: ${dnsProblem(err)}`, why: WHY_RDNS, fix };
  }
  ptrNames.set(ip, names);
  const confirmed: string[] = [];
  for (const n of names) if ((await addressesOf(ctx, n)).includes(ip)) confirmed.push(n);
  if (!confirmed.length)
    return { id, status: 'fail', summary: `PTR of ${ip} is ${names.join(', ')}, which does not resolve back to ${ip}`, why: WHY_RDNS, fix };
  return { id, status: 'pass', summary: `${ip} → ${confirmed.join(', ')} → ${ip} (forward-confirmed)`, why: WHY_RDNS };
}

/** `helo`: the gateway's `hostname`, checked against the sending IPs that use it (those outside any pool). */
async function hostnameCheck(ctx: DoctorContext, host: string, own: SendingAddress[], ptrNames: Map<string, string[]>): Promise<DoctorCheck> {
  const heloFix = 'set hostname to the fully qualified name in the PTR of the sending IPs, with an A/AAAA record naming them';
  if (!qualified(host)) {
    return { id: 'helo', status: 'fail', summary: `the HELO name (hostname) ${host} is not a fully qualified domain name`, why: WHY_HELO, fix: heloFix };
  }
  const addresses = await addressesOf(ctx, host);
  if (!addresses.length) {
    return {
      id: 'helo',
      status: 'fail',
      summary: `the HELO name ${host} does not resolve`,
      why: WHY_HELO,
      fix: `publish ${host}. IN A <sending IP>; ${heloFix}`,
    };
  }
  const ips = own.filter((a) => !a.range).map((a) => a.ip);
  const unresolved = ips.filter((ip) => !addresses.includes(ip));
  const mismatched = ips.filter((ip) => ptrNames.has(ip) && !ptrNames.get(ip)?.includes(host)).map((ip) => `${ip} (PTR ${ptrNames.get(ip)?.join(', ')})`);
  if (unresolved.length || mismatched.length) {
    const parts = [
      unresolved.length ? `${host} does not resolve to ${unresolved.join(', ')}` : '',
      mismatched.length ? `PTR does not name ${host}: ${mismatched.join(', ')}` : '',
    ];
    return { id: 'helo', status: 'warn', summary: `HELO ${host}: ${parts.filter(Boolean).join('; ')}`, why: WHY_HELO, fix: heloFix };
  }
  const matches = ips.some((ip) => ptrNames.has(ip));
  return {
    id: 'helo',
    status: 'pass',
    summary: `HELO ${host} resolves to ${addresses.join(', ')}${matches ? ' and matches the PTR of the sending IPs' : ''}`,
    why: WHY_HELO,
  };
}

/** `helo:<ip>`: a pool address's own HELO name is qualified, resolves to that address, and is its PTR name. */
async function poolHeloCheck(ctx: DoctorContext, a: SendingAddress, helo: string, ptr: string[] | undefined): Promise<DoctorCheck> {
  const id = `helo:${a.ip}`;
  const where = `HELO ${helo} of ${a.ip} (pool ${a.pool})`;
  const fix = `publish ${helo}. IN ${addressRecord(a.ip)} ${a.ip} and make it the PTR name of ${a.ip}, or set the address's helo in delivery.ipPools.pools.${a.pool} to its PTR name`;
  if (!qualified(helo)) return { id, status: 'fail', summary: `${where} is not a fully qualified domain name`, why: WHY_HELO, fix };
  const addresses = await addressesOf(ctx, helo);
  if (!addresses.length) return { id, status: 'fail', summary: `${where} does not resolve`, why: WHY_HELO, fix };
  if (!addresses.includes(a.ip)) return { id, status: 'fail', summary: `${where} resolves to ${addresses.join(', ')}, not to ${a.ip}`, why: WHY_HELO, fix };
  if (ptr && !ptr.includes(helo))
    return { id, status: 'warn', summary: `${where} resolves to ${a.ip}, but the PTR of ${a.ip} is ${ptr.join(', ')}`, why: WHY_HELO, fix };
  return { id, status: 'pass', summary: `${where} resolves to ${a.ip}${ptr ? ' and is its PTR name' : ''}`, why: WHY_HELO };
}

/** PTR and forward confirmation of each sending IP, then the HELO names: `hostname`, and each pool address's own. */
export async function reverseDnsChecks(ctx: DoctorContext): Promise<DoctorCheck[]> {
  const host = bare(ctx.config.hostname);
  const addresses = sendingAddresses(ctx.config);
  const ptrNames = new Map<string, string[]>();
  const checks: DoctorCheck[] = [];
  for (const a of addresses) checks.push(await rdnsCheck(ctx, a, host, ptrNames));
  checks.push(
    await hostnameCheck(
      ctx,
      host,
      addresses.filter((a) => !a.pool),
      ptrNames,
    ),
  );
  for (const a of addresses.filter((x) => x.pool)) checks.push(await poolHeloCheck(ctx, a, bare(a.helo ?? host), ptrNames.get(a.ip)));
  return checks;
}

/**
 * A loopback DNS server (tests/helpers/dns-server.ts) in a process of its own, so its CPU is not counted
 * as the caller's: prints `127.0.0.1:PORT` on its first line, then answers until stdin closes.
 */
import { startDnsServer } from '../tests/helpers/dns-server.js';

const dns = await startDnsServer({}, { negativeTtl: 300 });
process.stdout.write(`${dns.address}\n`);
process.stdin.resume();
process.stdin.on('end', () => void dns.close().then(() => process.exit(0)));

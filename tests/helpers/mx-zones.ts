/** Loopback DNS zones the delivery tests share (tests/helpers/dns-server.ts serves them). */
import type { Zone } from './dns-server.js';

/**
 * `domain` with two MX hosts: the preferred `mx1.<domain>` (priority 10) on 127.0.0.2 and the backup
 * `mx2.<domain>` (priority 20) on 127.0.0.1. The tests put on 127.0.0.2 what the first host does (nothing
 * listening, a silent socket, a scripted receiver) and their receiver on 127.0.0.1.
 */
export function primaryAndBackupMx(domain: string): Zone {
  return {
    [domain]: {
      MX: [
        { exchange: `mx1.${domain}`, priority: 10 },
        { exchange: `mx2.${domain}`, priority: 20 },
      ],
    },
    [`mx1.${domain}`]: { A: ['127.0.0.2'] },
    [`mx2.${domain}`]: { A: ['127.0.0.1'] },
  };
}

import { describe, expect, it } from 'vitest';
import { auditExport } from '../../../src/http/audit-routes.js';
import type { AuditStore, StoredAuditEntry } from '../../../src/store/audit-store.js';

/** An AuditStore that holds the given entries (the CSV writing is what is tested, not Redis). */
function storeOf(entries: StoredAuditEntry[]): AuditStore {
  return {
    async *all() {
      yield entries;
    },
  } as unknown as AuditStore;
}

describe('audit CSV export', () => {
  it('quotes every cell and prefixes a formula start (= + - @ tab CR) with a quote', async () => {
    const entry: StoredAuditEntry = {
      id: '1-0',
      at: 0,
      actor: '@actor',
      role: 'admin',
      ip: '-1',
      action: '\tcmd',
      target: '\r=x',
      status: 200,
      after: 'plain',
    };
    let text = '';
    for await (const chunk of auditExport(storeOf([entry]), 'csv')) text += chunk;
    const row = text.split('\r\n')[1];
    expect(row).toBe(`"1-0","1970-01-01T00:00:00.000Z","'@actor","admin","'-1","'\tcmd","'\r=x","200",,"plain"`);
  });
});

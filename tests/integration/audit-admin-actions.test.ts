/**
 * The audit log says what an admin action changed, not only that it was called: a pause's length, what a
 * resume released, how many rows an import wrote, which recipients a cancel expired. Real gateway and Redis.
 */
import { describe, expect, it } from 'vitest';
import { ADMIN_KEY, adminRequest, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

let t: TestGateway;

gatewayForFile({ overrides: { roles: ['api', 'intake'], limits: { recipient: null } } }, (g) => {
  t = g;
});

/** The newest audit entry of `action` (written once the answer has gone out, so polled for). */
async function lastEntry(action: string): Promise<Record<string, any> | undefined> {
  const { body } = await adminRequest(t.url, 'GET', '/v1/audit?limit=50');
  return body.items.find((e: { action: string }) => e.action === action);
}

describe('audit entries of delivery control and imports', () => {
  it('a timed pause of a recipient domain records until when, its resume what it released', async () => {
    expect((await adminRequest(t.url, 'POST', '/v1/shaping/domains/paused.example/pause', { seconds: 600 })).status).toBe(200);
    await expect
      .poll(() => lastEntry('POST /v1/shaping/domains/:domain/pause'), { timeout: 5000 })
      .toMatchObject({
        target: 'paused.example',
        after: { domain: 'paused.example', pausedUntil: expect.stringMatching(/Z$/), pausedBy: 'admin-dev' },
      });
    expect((await adminRequest(t.url, 'POST', '/v1/shaping/domains/paused.example/resume')).status).toBe(200);
    await expect
      .poll(() => lastEntry('POST /v1/shaping/domains/:domain/resume'), { timeout: 5000 })
      .toMatchObject({
        target: 'paused.example',
        before: { pausedUntil: expect.stringMatching(/Z$/) },
        after: { wasPaused: true, promoted: 0 },
      });
  });

  it('a provider pause records its state after', async () => {
    await adminRequest(t.url, 'POST', '/v1/shaping/gmail/pause', { seconds: 60 });
    await expect
      .poll(() => lastEntry('POST /v1/shaping/:provider/pause'), { timeout: 5000 })
      .toMatchObject({ target: 'gmail', after: { adminPaused: expect.stringMatching(/Z$/) } });
    await adminRequest(t.url, 'POST', '/v1/shaping/gmail/resume');
    await expect.poll(() => lastEntry('POST /v1/shaping/:provider/resume'), { timeout: 5000 }).toMatchObject({ target: 'gmail', after: { promoted: 0 } });
  });

  it('an import records how many rows it wrote', async () => {
    const res = await fetch(`${t.url}/v1/suppressions/import`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'text/csv' },
      body: 'address,reason\ni1@import.example,manual\ni2@import.example,manual\n',
    });
    expect(res.status).toBe(200);
    await expect.poll(() => lastEntry('POST /v1/suppressions/import'), { timeout: 5000 }).toMatchObject({ status: 200, after: { imported: 2, added: 2 } });
  });

  it('a cancel records the recipients it expired', async () => {
    const { body } = await t.submit({ from: 'noreply@example.test', to: ['guest@cancel.example'], subject: 'x', text: 'x' });
    expect((await adminRequest(t.url, 'POST', `/v1/messages/${body.id}/cancel`)).status).toBe(200);
    await expect
      .poll(() => lastEntry('POST /v1/messages/:id/cancel'), { timeout: 5000 })
      .toMatchObject({ target: body.id, after: { cancelled: ['guest@cancel.example'] } });
  });
});

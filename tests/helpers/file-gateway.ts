/**
 * One test gateway for a whole test file, the set-up most integration files repeated: started in the file's
 * beforeAll, closed in its afterAll (with its Redis keys and temp folder, as {@link startTestGateway}'s `close`).
 */
import { afterAll, beforeAll } from 'vitest';
import { startTestGateway, type TestGateway } from './test-gateway.js';

/**
 * Registers the beforeAll that starts a gateway with `opts` and hands it to `use` (which may go on to prepare the
 * file's data), and the afterAll that closes it, also when `use` failed. Call it at the top level of a test file
 * or inside a describe, where beforeAll would go.
 */
export function gatewayForFile(opts: Parameters<typeof startTestGateway>[0], use: (t: TestGateway) => void | Promise<void>, timeoutMs = 30_000): void {
  let started: TestGateway | undefined;
  beforeAll(async () => {
    started = await startTestGateway(opts);
    await use(started);
  }, timeoutMs);
  afterAll(async () => {
    await started?.close();
  });
}

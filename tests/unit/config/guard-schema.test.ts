import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';

describe('authLimits and connection options', () => {
  it('have defaults in config/default.yaml', () => {
    const c = loadConfig({ file: 'config/default.yaml' });
    expect(c.authLimits).toEqual({
      enabled: true,
      windowSeconds: 900,
      maxFailuresPerIp: 20,
      maxFailuresPerUser: 10,
      blockSeconds: 900,
      maxFailuresPerConnection: 3,
      delayStepMs: 200,
      maxDelayMs: 2000,
      clearCacheMs: 1000,
    });
    expect(c.smtp).toMatchObject({ maxConnections: 500, maxConnectionsPerIp: 20 });
    expect(c.http).toMatchObject({
      maxConnections: 2000,
      maxConnectionsPerIp: 100,
      headersTimeoutSeconds: 10,
      requestTimeoutSeconds: 60,
      idleTimeoutSeconds: 120,
      keepAliveTimeoutSeconds: 5,
    });
  });

  it('name the key at fault for a bad value', () => {
    expect(() => loadConfig({ file: 'config/default.yaml', overrides: { http: { headersTimeoutSeconds: 90 } } })).toThrow(
      /http\.headersTimeoutSeconds.*requestTimeoutSeconds/,
    );
    expect(() => loadConfig({ file: 'config/default.yaml', overrides: { authLimits: { maxFailuresPerIp: 0 } } })).toThrow(/authLimits\.maxFailuresPerIp/);
    expect(() => loadConfig({ file: 'config/default.yaml', overrides: { authLimits: { blockSeconds: 1.5 } } })).toThrow(/authLimits\.blockSeconds/);
  });
});

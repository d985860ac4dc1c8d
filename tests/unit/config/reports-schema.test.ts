import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';

const reports = (r: Record<string, unknown>) => ({ file: 'config/default.yaml', overrides: { feedback: { reports: r } } });

describe('feedback.reports: the report threads', () => {
  it('default to one thread, a 10 s cap per report and 8 reports waiting', () => {
    expect(loadConfig({ file: 'config/default.yaml' }).feedback.reports).toMatchObject({ parseThreads: 1, maxParseSeconds: 10, maxQueuedReports: 8 });
  });

  it('accept a fraction of a second as cap and no queue', () => {
    expect(loadConfig(reports({ maxParseSeconds: 0.5, maxQueuedReports: 0, parseThreads: 2 })).feedback.reports).toMatchObject({
      parseThreads: 2,
      maxParseSeconds: 0.5,
      maxQueuedReports: 0,
    });
  });

  it('refuse no thread, a cap of 0 or over 10 minutes, a negative or fractional queue, naming the key', () => {
    expect(() => loadConfig(reports({ parseThreads: 0 }))).toThrowError(/feedback\.reports\.parseThreads/);
    expect(() => loadConfig(reports({ maxParseSeconds: 0 }))).toThrowError(/feedback\.reports\.maxParseSeconds/);
    expect(() => loadConfig(reports({ maxParseSeconds: 601 }))).toThrowError(/feedback\.reports\.maxParseSeconds/);
    expect(() => loadConfig(reports({ maxQueuedReports: -1 }))).toThrowError(/feedback\.reports\.maxQueuedReports/);
    expect(() => loadConfig(reports({ maxQueuedReports: 1.5 }))).toThrowError(/feedback\.reports\.maxQueuedReports/);
  });
});

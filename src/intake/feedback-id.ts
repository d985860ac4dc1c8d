import type { Config, Priority } from '../config/schema.js';
import { splitMessage } from './header-block.js';

/**
 * The Feedback-ID configured for a sender domain and traffic class (`<class prefix>:<senderId>`, Gmail's
 * `a:b:c:SenderId`), or null when that domain or class has none.
 */
export function feedbackIdFor(domains: Config['domains'], domain: string, priority: Priority): string | null {
  const conf = domains.find((d) => d.name.toLowerCase() === domain)?.feedbackId;
  const prefix = conf?.[priority];
  return conf && prefix ? `${prefix}:${conf.senderId}` : null;
}

/**
 * Sets the Feedback-ID header of a CRLF message to `value`: every Feedback-ID field the client wrote is
 * removed (with its folded lines) and one is appended to the header. The configured value wins, so the
 * split Gmail reports for this domain and class is never diluted by a client's own identifiers.
 */
export function setFeedbackId(raw: Buffer, value: string): Buffer {
  const { header, body } = splitMessage(raw);
  const kept: string[] = [];
  let dropping = false;
  for (const line of header.split('\r\n')) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) kept.push(line);
      continue;
    }
    dropping = /^feedback-id[ \t]*:/i.test(line);
    if (!dropping) kept.push(line);
  }
  kept.push(`Feedback-ID: ${value}`);
  return Buffer.concat([Buffer.from(`${kept.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

/**
 * A coarse category for a remote reply, used as a bounded metric label and on the timeline. The feedback
 * loop's rules file refines this; these defaults follow the enhanced status codes of RFC 3463.
 */
export function categorize(code: number | null, reply: string): string {
  const enhanced = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(reply);
  const cls = enhanced ? `${enhanced[2]}.${enhanced[3]}` : '';
  if (code === null) return /dns|ENOTFOUND|ENODATA|ESERVFAIL|lookup/i.test(reply) ? 'dns' : 'network';
  if (code >= 200 && code < 300) return 'none';
  if (/^1\.(1|0)$/.test(cls) || /user unknown|no such user|does not exist/i.test(reply)) return 'invalid-recipient';
  if (/^1\.(2|10)$/.test(cls)) return 'bad-domain';
  if (cls === '2.2' || /mailbox full|quota/i.test(reply)) return 'mailbox-full';
  if (cls === '2.1') return 'inactive-mailbox';
  if (/greylist/i.test(reply)) return 'greylist';
  if (cls === '7.28' || code === 421 || /rate limit|too many|try again later/i.test(reply)) return 'rate-limit';
  if (/spam|blocked|blacklist|blocklist|reputation/i.test(reply)) return 'spam-block';
  if (enhanced && enhanced[2] === '7') return 'policy';
  if (enhanced && enhanced[2] === '5') return 'protocol';
  return 'other';
}

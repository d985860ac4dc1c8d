import { describe, expect, it } from 'vitest';
import { parseAuthResults, receiverVerdicts } from '../../../src/placement/auth-results.js';
import { orderMailboxes } from '../../../src/placement/mailbox-search.js';

describe('Authentication-Results parsing', () => {
  it.each([
    [
      'Gmail',
      'mx.google.com;\r\n       dkim=pass header.i=@example.com header.s=k1 header.b=abc;\r\n       spf=pass (google.com: domain of b@bounce.example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=b@bounce.example.com;\r\n       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com',
      { authservId: 'mx.google.com', dkim: 'pass', spf: 'pass', dmarc: 'pass' },
    ],
    [
      'Microsoft, with a comment that mentions dkim=fail',
      'spf=softfail (sender IP is 192.0.2.1) smtp.mailfrom=example.com; dkim=none (message not signed, not dkim=fail) header.d=none;dmarc=fail action=quarantine header.from=example.com;compauth=fail reason=001',
      { spf: 'softfail', dkim: 'none', dmarc: 'fail' },
    ],
    [
      'two signatures, one failing: pass wins',
      'mx.example; dkim=fail header.d=a.example; dkim=pass header.d=example.com',
      { authservId: 'mx.example', dkim: 'pass' },
    ],
    ['no results', 'mx.example; none', { authservId: 'mx.example' }],
  ])('%s', (_name, value, expected) => {
    expect(parseAuthResults(value)).toEqual(expected);
  });

  it('takes the topmost field of a header block (the receiving MX), not one further down', () => {
    const block =
      'X-Kurir-Probe: kp1\r\nAuthentication-Results: mx.seed.test;\r\n dkim=fail header.d=example.com\r\nAuthentication-Results: forged.example; dkim=pass\r\n';
    expect(receiverVerdicts(block)).toEqual({ authservId: 'mx.seed.test', dkim: 'fail' });
    expect(receiverVerdicts('X-Kurir-Probe: kp1\r\n')).toBeUndefined();
  });
});

describe('seed folder order', () => {
  const box = (path: string, specialUse?: string, specialUseSource?: 'extension' | 'name', flags: string[] = []) =>
    ({
      path,
      pathAsListed: path,
      name: path,
      delimiter: '/',
      parent: [],
      parentPath: '',
      flags: new Set(flags),
      specialUse,
      specialUseSource,
      listed: true,
      subscribed: true,
    }) as any;
  const junk = ['Junk', 'Spam', '[Gmail]/Spam'];
  const skip = ['Sent', 'Drafts', 'Trash'];

  it('searches INBOX, then the SPECIAL-USE \\Junk folder, then other folders, never sent mail, drafts, trash or \\Noselect', () => {
    const order = orderMailboxes(
      [
        box('Archive'),
        box('Sent', '\\Sent', 'extension'),
        box('Bulk', '\\Junk', 'extension'),
        box('Spam'),
        box('INBOX', '\\Inbox', 'name'),
        box('[Gmail]', undefined, undefined, ['\\Noselect']),
        box('Papierkorb', '\\Trash', 'extension'),
      ],
      junk,
      skip,
    );
    // With a server-marked \Junk folder, a folder merely named "Spam" is just another folder.
    expect(order).toEqual([
      { path: 'INBOX', folder: 'inbox' },
      { path: 'Bulk', folder: 'spam' },
      { path: 'Archive', folder: 'other' },
      { path: 'Spam', folder: 'other' },
    ]);
  });

  it('falls back to known names when the server marks no \\Junk folder', () => {
    const order = orderMailboxes([box('INBOX'), box('[Gmail]/Spam'), box('Receipts')], junk, skip);
    expect(order.map((o) => `${o.path}:${o.folder}`)).toEqual(['INBOX:inbox', '[Gmail]/Spam:spam', 'Receipts:other']);
  });
});

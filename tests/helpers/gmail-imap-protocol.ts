/**
 * IMAP4rev1 wire syntax for the Gmail test double (tests/helpers/gmail-imap.ts): splitting the byte stream into
 * commands (with synchronizing and LITERAL+ literals, RFC 3501 section 4.3 / RFC 7888), tokenizing a command into
 * atoms, strings and parenthesized lists, and the few response encodings the double needs.
 */

/** An atom or string (quoted or literal) is a string; a parenthesized list is an array. */
export type Token = string | Token[];

/**
 * Takes complete commands off the front of `buf`. Returns them with the rest of the buffer and whether the
 * client waits for a continuation ("+") before sending a synchronizing literal.
 */
export function takeCommands(buf: Buffer): { commands: Buffer[]; rest: Buffer; wantsContinuation: boolean } {
  const commands: Buffer[] = [];
  let start = 0;
  let pos = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return { commands, rest: buf.subarray(start), wantsContinuation: false };
    const lit = /\{(\d+)(\+?)\}$/.exec(buf.subarray(pos, eol).toString('latin1'));
    if (!lit) {
      commands.push(buf.subarray(start, eol));
      start = pos = eol + 2;
      continue;
    }
    const end = eol + 2 + Number(lit[1]);
    if (buf.length < end) return { commands, rest: buf.subarray(start), wantsContinuation: lit[2] !== '+' && buf.length === eol + 2 };
    pos = end;
  }
}

/** Tokenizes one command (literals inline). Atoms keep `[...]` sections whole, e.g. `BODY.PEEK[HEADER.FIELDS (A B)]`. */
export function tokenize(line: Buffer): Token[] {
  const s = line.toString('latin1');
  let i = 0;
  const parseList = (closer: string | null): Token[] => {
    const out: Token[] = [];
    while (i < s.length) {
      const c = s[i];
      if (c === ' ') i++;
      else if (closer && c === closer) {
        i++;
        return out;
      } else if (c === '(') {
        i++;
        out.push(parseList(')'));
      } else if (c === '"') {
        let v = '';
        for (i++; i < s.length && s[i] !== '"'; i++) v += s[i] === '\\' ? s[++i] : s[i];
        i++;
        out.push(Buffer.from(v, 'latin1').toString('utf8'));
      } else if (c === '{') {
        const m = /^\{(\d+)\+?\}\r\n/.exec(s.slice(i));
        if (!m) throw new Error('bad literal');
        i += m[0].length;
        out.push(Buffer.from(s.slice(i, i + Number(m[1])), 'latin1').toString('utf8'));
        i += Number(m[1]);
      } else {
        let v = '';
        let depth = 0;
        while (i < s.length && (depth > 0 || (s[i] !== ' ' && s[i] !== ')' && s[i] !== '('))) {
          if (s[i] === '[') depth++;
          if (s[i] === ']') depth--;
          v += s[i++];
        }
        out.push(v);
      }
    }
    return out;
  };
  return parseList(null);
}

/** A quoted string, or a literal when the value cannot be quoted. */
export function astring(v: string): string {
  if (/[\r\n\x80-\uffff]/.test(v)) return `{${Buffer.byteLength(v)}}\r\n${v}`;
  return `"${v.replace(/(["\\])/g, '\\$1')}"`;
}

/** IMAP INTERNALDATE: `"29-Nov-2026 12:34:56 +0000"`. */
export function internalDate(d: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number): string => String(n).padStart(2, '0');
  return `"${p(d.getUTCDate())}-${months[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000"`;
}

/** Whether `n` is in an IMAP sequence set (`1,3:5,7:*`); `max` stands for `*`. */
export function inSet(set: string, n: number, max: number): boolean {
  return set.split(',').some((part) => {
    const [a, b = a] = part.split(':').map((x) => (x === '*' ? max : Number(x)));
    return n >= Math.min(a, b) && n <= Math.max(a, b);
  });
}

/** The header block of a message, and the named fields of it (BODY[HEADER.FIELDS (...)]). */
export function headerFields(raw: Buffer, names: string[]): string {
  const text = raw.toString('utf8');
  const end = text.search(/\r?\n\r?\n/);
  const head = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n/g, '\r\n');
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const fields = head.split(/\r\n(?![ \t])/).filter((f) => wanted.has(f.slice(0, f.indexOf(':')).trim().toLowerCase()));
  return `${fields.map((f) => `${f}\r\n`).join('')}\r\n`;
}

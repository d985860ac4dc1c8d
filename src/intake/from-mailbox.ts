/**
 * The From header of a submitted message, read strictly as one RFC 5322 mailbox (§3.4): `addr-spec` or
 * `[display-name] <addr-spec>`, the display name a phrase of atoms and quoted strings (encoded words are atoms),
 * comments and white space around the words and the address. Anything else is refused, because the domain Kurir
 * signs with (DKIM d=) is read from this header: a value that receivers, DMARC evaluators and Kurir could read as
 * different addresses (`a@x.test b@y.test`, `<a@x.test>b@y.test`, `b@y.test <a@x.test>`, `a@x.test <>`) is the
 * "From header ambiguity" attack. nodemailer's addressparser repairs such values instead of refusing them.
 *
 * Stricter than RFC 5322 in one way: no space or comment inside the address itself (around its `@` or dots),
 * which only the obsolete syntax allows. Domain literals (`[192.0.2.1]`) are refused: Kurir signs for host names.
 */
import { KurirError } from '../lib/errors.js';

interface Token {
  kind: 'atom' | 'quoted' | 'special';
  text: string;
  /** Offset of the token in the header value. */
  start: number;
  /** Whether white space or a comment comes right before it. */
  spaced: boolean;
}

/** RFC 5322 atext, plus 8-bit characters (RFC 6532, a UTF-8 header read as latin1). */
function isAtext(c: number): boolean {
  if (c >= 0x80) return true;
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true;
  return "!#$%&'*+-/=?^_`{|}~".includes(String.fromCharCode(c));
}

const refuse = (reason: string): KurirError => new KurirError('BAD_MESSAGE', `From header: ${reason}`, { field: 'from' });

/** A bit of the header for a refusal: quoted, at most 60 characters. */
const shown = (text: string): string => JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);

/** Splits a header value into atoms, quoted strings and specials; white space and (nested) comments only mark the next token. */
function tokenize(value: string): Token[] {
  const tokens: Token[] = [];
  let spaced = false;
  let i = 0;
  while (i < value.length) {
    const c = value.charCodeAt(i);
    if (c === 0x20 || c === 0x09) {
      spaced = true;
      i++;
    } else if (c === 0x28) {
      // A comment: balanced parentheses, backslash quoting the next character.
      let depth = 0;
      do {
        const d = value[i];
        if (d === '\\') i++;
        else if (d === '(') depth++;
        else if (d === ')') depth--;
        i++;
      } while (depth > 0 && i < value.length);
      if (depth > 0) throw refuse('a comment "(" is not closed');
      spaced = true;
    } else if (c === 0x22) {
      const start = i++;
      while (i < value.length && value[i] !== '"') i += value[i] === '\\' ? 2 : 1;
      if (i >= value.length) throw refuse(`a quoted string is not closed: ${shown(value.slice(start))}`);
      tokens.push({ kind: 'quoted', text: value.slice(start, ++i), start, spaced });
      spaced = false;
    } else if (isAtext(c)) {
      const start = i;
      while (i < value.length && isAtext(value.charCodeAt(i))) i++;
      tokens.push({ kind: 'atom', text: value.slice(start, i), start, spaced });
      spaced = false;
    } else {
      if (c === 0x29) throw refuse('a ")" without its "("');
      tokens.push({ kind: 'special', text: value[i], start: i, spaced });
      spaced = false;
      i++;
    }
  }
  return tokens;
}

const isSpecial = (t: Token | undefined, text: string): boolean => t?.kind === 'special' && t.text === text;

/**
 * Reads `atom *("." atom)` from tokens[i] with nothing between the parts; answers its text and the next index.
 * `what` names the part in a refusal.
 */
function dotAtom(tokens: Token[], i: number, what: string): { text: string; next: number } {
  let text = '';
  for (;;) {
    const t = tokens[i];
    if (t?.kind === 'atom' && text && t.spaced) throw refuse('no space or comment may stand inside the address');
    if (t?.kind !== 'atom') {
      if (isSpecial(t, '[')) throw refuse('a domain literal ([...]) is not accepted: the domain must be a host name');
      if (text || isSpecial(t, '.')) throw refuse(`the ${what} has an empty part (a dot at its start or end, or two in a row)`);
      throw refuse(t ? `unexpected ${shown(t.text)} where the ${what} must start` : `the address has no ${what}`);
    }
    text += t.text;
    i++;
    if (!isSpecial(tokens[i], '.')) return { text, next: i };
    if (tokens[i].spaced) throw refuse('no space or comment may stand inside the address');
    text += '.';
    i++;
  }
}

/** Reads `local-part "@" domain` from tokens[i]; answers the address as written and the next index. */
function addrSpec(tokens: Token[], i: number): { address: string; next: number } {
  let local: string;
  if (tokens[i]?.kind === 'quoted') {
    local = tokens[i].text;
    i++;
  } else {
    ({ text: local, next: i } = dotAtom(tokens, i, 'local part'));
  }
  const at = tokens[i];
  if (!isSpecial(at, '@')) {
    if (tokens.slice(i).some((t) => isSpecial(t, '@'))) throw refuse('a display name needs the address in angle brackets: "Name <address>"');
    throw refuse('no address (no "@")');
  }
  if (at.spaced || tokens[i + 1]?.spaced) throw refuse('no space or comment may stand inside the address');
  const domain = dotAtom(tokens, i + 1, 'domain');
  return { address: `${local}@${domain.text}`, next: domain.next };
}

/** Checks that tokens[0, end) form a display name: words (atoms, quoted strings), and dots after the first. */
function checkDisplayName(value: string, tokens: Token[], end: number): void {
  const name = value.slice(tokens[0].start, tokens[end].start).trim();
  if (tokens.slice(0, end).some((t) => isSpecial(t, '@'))) {
    throw refuse(`the display name ${shown(name)} holds an unquoted "@": quote it ("${name.replace(/["\\]/g, '')}" <address>) or leave it out`);
  }
  for (let i = 0; i < end; i++) {
    const t = tokens[i];
    if (t.kind === 'special' && !(t.text === '.' && i > 0)) throw refuse(`the display name ${shown(name)} has a ${shown(t.text)} outside quotes`);
  }
}

/**
 * The address of a From header value that is exactly one mailbox, as written (`local@domain`, a quoted local part
 * with its quotes). Throws BAD_MESSAGE (field `from`) saying what is wrong otherwise.
 */
export function parseFromMailbox(value: string): string {
  const tokens = tokenize(value);
  if (!tokens.length) throw refuse('no address');
  const list = tokens.find((t) => t.kind === 'special' && (t.text === ',' || t.text === ':' || t.text === ';'));
  if (list) {
    throw refuse(
      list.text === ','
        ? 'must hold exactly one address, not a list (a comma outside quotes)'
        : `must hold exactly one address, not a group ("name: addresses;"): a ${shown(list.text)} outside quotes`,
    );
  }
  const open = tokens.findIndex((t) => isSpecial(t, '<'));
  if (open === -1) {
    const { address, next } = addrSpec(tokens, 0);
    if (next < tokens.length) throw refuse(`more after the address ${address}: ${shown(value.slice(tokens[next].start).trim())}`);
    return address;
  }
  if (isSpecial(tokens[open + 1], '>')) throw refuse('the angle brackets are empty (<>)');
  const { address, next } = addrSpec(tokens, open + 1);
  if (!isSpecial(tokens[next], '>')) {
    throw refuse(next < tokens.length ? `${shown(tokens[next].text)} where the ">" after ${address} must come` : `no ">" after ${address}`);
  }
  if (next + 1 < tokens.length) throw refuse(`more after <${address}>: ${shown(value.slice(tokens[next + 1].start).trim())}`);
  if (open > 0) checkDisplayName(value, tokens, open);
  return address;
}

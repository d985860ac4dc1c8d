/**
 * Quoted local parts (`"john doe"@example.com`, RFC 5321 §4.1.2 Quoted-string) in MAIL FROM and RCPT TO.
 * smtp-server splits the command line on white space and the path on `@`, so a quoted local part holding a space
 * or an `@` was answered `501 Bad recipient address syntax` while the HTTP API accepted the same address (and
 * nodemailer delivers it as given). This wraps a connection's `_parseAddressCommand` (smtp-server 3.21.6, pinned;
 * checked in tests/unit/lib/library-internals.test.ts): a path whose local part is a quoted string is parsed with a
 * plain stand-in local part, so smtp-server still checks the domain and the parameters, and the quoted local part
 * is put back into the address it hands on. Kurir then validates the address as any other (src/lib/address.ts).
 */
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

type ParseAddressCommand = SMTPConnection['_parseAddressCommand'];

/**
 * `MAIL FROM:<` / `RCPT TO:<`, an optional source route, a quoted local part (qtextSMTP or quoted-pairSMTP), then
 * `@domain>` and the parameters.
 */
const QUOTED_PATH = /^([^:<"]*:\s*<(?:@[^\s,:@<>"]+(?:,@[^\s,:@<>"]+)*:)?)("(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*")(@[^\s<>@"]*>.*)$/;

/** Stand-in for the quoted local part while smtp-server parses the rest. */
const STAND_IN = 'quoted';

/** Wraps smtp-server's address parser (`conn._parseAddressCommand`) so it accepts quoted local parts. */
export function withQuotedLocalParts(parse: ParseAddressCommand): ParseAddressCommand {
  return (name, command) => {
    const match = QUOTED_PATH.exec(command.toString());
    if (!match) return parse(name, command);
    const [, before, quoted, after] = match;
    const parsed = parse(name, `${before}${STAND_IN}${after}`);
    if (!parsed) return parsed;
    return { ...parsed, address: quoted + parsed.address.slice(parsed.address.indexOf('@')) };
  };
}

// `npm run inbox [-- --port 1025]`: a local inbox for development. An SMTP server on 127.0.0.1 that accepts every
// message (no AUTH, STARTTLS with smtp-server's built-in test certificate) and prints its envelope, main headers,
// DKIM signatures and text. Point Kurir's delivery at it to see mail arrive on a machine without DNS or port 25:
//   KURIR_DELIVERY__SMARTHOST__HOST=127.0.0.1 KURIR_DELIVERY__SMARTHOST__PORT=1025 npm start
import { parseArgs } from 'node:util';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

const { values } = parseArgs({ options: { port: { type: 'string', default: '1025' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port);
let count = 0;

/** The tags of each DKIM-Signature header (unfolded), read from the raw header block. */
function dkimSignatures(raw) {
  const head = raw
    .toString('latin1')
    .split(/\r?\n\r?\n/, 1)[0]
    .replace(/\r?\n[ \t]+/g, ' ');
  return head
    .split(/\r?\n/)
    .filter((l) => /^dkim-signature:/i.test(l))
    .map((l) => Object.fromEntries([...l.slice(l.indexOf(':') + 1).matchAll(/([a-z]+)\s*=\s*([^;]*)/g)].map((m) => [m[1], m[2].trim()])));
}

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['AUTH'],
  banner: 'Kurir development inbox',
  logger: false,
  onData(stream, session, callback) {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', async () => {
      const raw = Buffer.concat(chunks);
      const mail = await simpleParser(raw).catch(() => null);
      const n = ++count;
      const rcpt = session.envelope.rcptTo.map((r) => `<${r.address}>`).join(', ');
      const lines = [
        `inbox: message ${n} from <${session.envelope.mailFrom ? session.envelope.mailFrom.address : ''}> to ${rcpt} (${raw.length} bytes${session.secure ? ', TLS' : ''})`,
      ];
      if (mail) {
        for (const name of ['from', 'to', 'subject', 'message-id', 'x-kurir-id']) {
          const h = mail.headers.get(name);
          if (h) lines.push(`  ${name}: ${typeof h === 'object' && 'text' in h ? h.text : String(h)}`);
        }
        for (const sig of dkimSignatures(raw)) lines.push(`  dkim-signature: d=${sig.d ?? '?'} s=${sig.s ?? '?'} a=${sig.a ?? '?'}`);
        lines.push(
          '',
          ...String(mail.text ?? '')
            .trimEnd()
            .split('\n')
            .map((l) => `  ${l}`),
        );
      }
      process.stdout.write(`${lines.join('\n')}\n\n`);
      callback(null, `2.0.0 Ok: stored as message ${n}`);
    });
  },
});
server.on('error', (err) => process.stderr.write(`inbox: ${err.message}\n`));
server.listen(port, values.host, () => process.stdout.write(`inbox: listening on ${values.host}:${port}; Ctrl-C to stop\n`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));

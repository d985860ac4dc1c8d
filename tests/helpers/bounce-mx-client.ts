/**
 * Sends a message to a gateway's bounce MX (role feedback) as a remote MTA would, and answers the SMTP reply
 * instead of throwing: what the DSN, ARF and report tests assert on.
 */
import nodemailer from 'nodemailer';

/** The bounce MX's answer: accepted (`ok`) with its reply line, or refused with the reply code and line. */
export interface BounceMxAnswer {
  ok: boolean;
  code?: number;
  response: string;
}

/** Delivers `raw` to `to` at the bounce MX on 127.0.0.1:`port`; `from` is the envelope sender (null for DSNs). */
export async function sendToBounceMx(port: number | undefined, to: string, raw: string | Uint8Array, from = ''): Promise<BounceMxAnswer> {
  if (port === undefined) throw new Error('sendToBounceMx: the gateway has no bounce MX port (role feedback)');
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, tls: { rejectUnauthorized: false } });
  try {
    const info = await transport.sendMail({ envelope: { from, to: [to] }, raw: typeof raw === 'string' ? raw : Buffer.from(raw) });
    return { ok: true, response: info.response };
  } catch (err) {
    const e = err as { responseCode?: number; response?: string };
    return { ok: false, code: e.responseCode ?? 0, response: e.response ?? String(err) };
  } finally {
    transport.close();
  }
}

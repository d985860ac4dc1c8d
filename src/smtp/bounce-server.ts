/**
 * The bounce MX (role `feedback`): an smtp-server listener for `bounce.domain` that takes DSNs for VERP
 * return paths (`b+<id>.<token>@<bounce domain>`, token verified at RCPT) and ARF reports for
 * `<feedback.fblAddress>@<bounce domain>`, DMARC aggregate reports for `<domainKeys.dmarcReportLocalPart>@` and
 * SMTP TLS reports for `<feedback.reports.tlsRptLocalPart>@<bounce domain>` (src/feedback/aggregate/), and
 * refuses everything else with 550 — no backscatter, no relay.
 *
 * Every message it accepts is answered 250 even when it cannot be used (a malformed or truncated report,
 * an unknown message): the sender must not retry it forever. Such reports are counted
 * (`kurir_feedback_reports_ignored_total{reason}`) and logged with the reason. Only a failure on Kurir's
 * side (Redis unavailable) is answered 451, so the report is retried later, and 451 4.3.2 when every parse
 * thread is taken and too many reports wait for one. A DMARC or TLS report that is hostile or unreadable
 * (zip bomb, DTD, too many records, …) is refused with 550 5.6.0 and the reason.
 * Nothing a client sends can crash the listener.
 *
 * Sizes: the listener takes messages up to `feedback.maxAcceptedBytes` (its SIZE) and keeps the first
 * `feedback.maxMessageBytes`. A DSN or ARF report over that (one returning a whole original) is read from
 * what was kept — its delivery-status or feedback-report part comes before the returned message — rather
 * than refused, which would lose the bounce. A DMARC or TLS report over it is refused with 552 5.3.4.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/schema.js';
import { createDataCollector } from '../lib/collect-data.js';
import type { Logger } from '../lib/logger.js';
import { parseVerp } from '../lib/verp.js';
import type { Metrics } from '../metrics/metrics.js';
import type { FeedbackIngest } from '../feedback/ingest/ingest.js';
import type { IngestInput } from '../feedback/ingest/ingest-types.js';
import type { ReportIngest } from '../feedback/aggregate/report-ingest.js';
import { ERRORS } from '../lib/errors.js';

export interface BounceServerDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  ingest: Pick<FeedbackIngest, 'ingest'>;
  /** DMARC aggregate and TLS reports; without it their addresses are refused like any unknown local part. */
  reports?: Pick<ReportIngest, 'ingest'>;
  verpSecret: string;
  /** STARTTLS material (the intake's certificate); without it STARTTLS is not offered. */
  tls?: { key: string; cert: string };
}

export interface BounceServer {
  /** Starts listening on feedback.host:feedback.port; resolves with the bound port. */
  listen(): Promise<number>;
  /** Stops accepting, lets in-flight reports finish (bounded), then closes. Safe to call twice. */
  close(): Promise<void>;
}

/** What RCPT TO decided for one address. */
export type RecipientVerdict =
  | { ok: true; kind: 'verp'; messageId: string }
  | { ok: true; kind: 'fbl' }
  | { ok: true; kind: 'dmarc' | 'tlsrpt' }
  | { ok: false; reason: 'relay-denied' | 'forged-verp' | 'no-such-address'; code: number; reply: string };

/** Most recipients one transaction may name (a DSN has one). */
const MAX_RECIPIENTS = 20;
const CLOSE_GRACE_MS = 5000;

type ReplyError = Error & { responseCode: number };
const reply = (code: number, text: string): ReplyError => Object.assign(new Error(text), { responseCode: code });

/** Decides whether the bounce MX accepts mail for an address. */
export function checkRecipient(
  address: string,
  config: Pick<Config, 'bounce' | 'feedback' | 'domainKeys'>,
  verpSecret: string,
  reports = true,
): RecipientVerdict {
  const addr = address.trim().toLowerCase();
  const at = addr.lastIndexOf('@');
  const domain = at > 0 ? addr.slice(at + 1) : '';
  const bounceDomain = config.bounce.domain.toLowerCase();
  if (domain !== bounceDomain)
    return { ok: false, reason: 'relay-denied', code: 550, reply: '5.7.1 Relaying denied: this server only accepts mail for its own bounce addresses' };
  const local = addr.slice(0, at);
  if (local === config.feedback.fblAddress.toLowerCase()) return { ok: true, kind: 'fbl' };
  if (reports && local === config.domainKeys.dmarcReportLocalPart.toLowerCase()) return { ok: true, kind: 'dmarc' };
  if (reports && local === config.feedback.reports.tlsRptLocalPart.toLowerCase()) return { ok: true, kind: 'tlsrpt' };
  const id = parseVerp(addr, bounceDomain, verpSecret);
  if (id) return { ok: true, kind: 'verp', messageId: id };
  if (/^b\+/.test(local)) return { ok: false, reason: 'forged-verp', code: 550, reply: '5.1.1 No such bounce address' };
  return { ok: false, reason: 'no-such-address', code: 550, reply: '5.1.1 No such user here' };
}

/** Creates the bounce MX. Nothing listens until `listen()`. */
export function createBounceServer(deps: BounceServerDeps): BounceServer {
  const { config, metrics } = deps;
  const log = deps.logger.child({ component: 'bounce-mx' });
  const maxBytes = config.feedback.maxMessageBytes;
  const maxAccepted = config.feedback.maxAcceptedBytes;
  const dataStreams = createDataCollector(maxBytes);
  let closing: Promise<void> | null = null;
  let listening: Promise<number> | null = null;

  const server = new SMTPServer({
    name: config.hostname,
    banner: 'Kurir bounce and feedback-loop MX',
    ...(deps.tls ? { key: deps.tls.key, cert: deps.tls.cert, minVersion: 'TLSv1.2' } : {}),
    hideSTARTTLS: !deps.tls,
    disabledCommands: deps.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    authOptional: true,
    size: maxAccepted,
    hideSMTPUTF8: true,
    hideDSN: true,
    hideREQUIRETLS: true,
    disableReverseLookup: true,
    logger: false,
    maxClients: 200,
    socketTimeout: config.feedback.socketTimeoutSeconds * 1000,
    closeTimeout: CLOSE_GRACE_MS,

    onConnect(session, callback) {
      log.debug({ sid: session.id, remote: session.remoteAddress }, 'bounce-mx: connection');
      callback(closing ? reply(421, '4.3.2 Service shutting down, try again later') : null);
    },

    // DSNs come from the null sender <>; feedback loops from anyone: every MAIL FROM is accepted.
    onMailFrom(_address, _session, callback) {
      callback();
    },

    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback) {
      try {
        if (session.envelope.rcptTo.length >= MAX_RECIPIENTS) return callback(reply(452, '4.5.3 Too many recipients'));
        const verdict = checkRecipient(address.address ?? '', config, deps.verpSecret, !!deps.reports);
        if (!verdict.ok) {
          metrics.feedbackIgnored.inc({ reason: verdict.reason });
          log.info({ sid: session.id, remote: session.remoteAddress, reason: verdict.reason }, 'bounce-mx: recipient refused');
          return callback(reply(verdict.code, verdict.reply));
        }
        callback();
      } catch (err) {
        log.error({ err, sid: session.id }, 'bounce-mx: unexpected error at RCPT');
        callback(reply(451, '4.3.0 Internal error, try again later'));
      }
    },

    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      dataStreams.collect(stream, callback, {
        onError: (err, answer) => {
          log.info({ sid: session.id, err: err.message }, 'bounce-mx: stream error');
          answer(reply(451, '4.3.0 Error reading the message, try again later'));
        },
        onEnd: (data, answer) => {
          const tooLarge = (limit: number): void => {
            metrics.feedbackIgnored.inc({ reason: 'too-large' });
            log.info({ sid: session.id, remote: session.remoteAddress, limit }, 'bounce-mx: report too large');
            answer(reply(552, `5.3.4 Message too big: at most ${limit} bytes`));
          };
          if (stream.sizeExceeded) return tooLarge(maxAccepted);
          const verdicts = session.envelope.rcptTo.map((r) => checkRecipient(r.address, config, deps.verpSecret, !!deps.reports));
          if (deps.reports && verdicts.some((v) => v.ok && (v.kind === 'dmarc' || v.kind === 'tlsrpt'))) {
            // An aggregate report is one attachment: a cut one cannot be read.
            return data.tooLarge ? tooLarge(maxBytes) : applyReport(deps.reports, data.raw(), session, answer);
          }
          const verpIds = [...new Set(verdicts.flatMap((v) => (v.ok && v.kind === 'verp' ? [v.messageId] : [])))];
          const input: IngestInput = { raw: data.raw(), verpIds, sessionId: session.id, remoteAddress: session.remoteAddress };
          if (data.tooLarge) {
            input.raw = input.raw.subarray(0, maxBytes);
            input.truncated = true;
            log.info(
              { sid: session.id, remote: session.remoteAddress, limit: maxBytes },
              'bounce-mx: report over feedback.maxMessageBytes, reading its first part',
            );
          }
          deps.ingest.ingest(input).then(
            (outcome) => {
              if (outcome.result === 'busy')
                return answer(reply(ERRORS.BUSY.smtp.code, `${ERRORS.BUSY.smtp.enhanced} Report not read now (busy): ${outcome.detail}`));
              answer(null, outcome.result === 'applied' ? '2.0.0 Report applied' : `2.0.0 Report received, not used (${outcome.reason})`);
            },
            (err: unknown) => {
              log.warn(
                { sid: session.id, err: (err as Error)?.message ?? String(err) },
                'bounce-mx: report not processed now (stores or source check unavailable), answered 451',
              );
              answer(reply(451, '4.3.0 Temporarily unable to process the report, try again later'));
            },
          );
        },
      });
    },
  });
  /** A DMARC aggregate or TLS report: 250 applied or duplicate, 550 5.6.0 refused (with the reason), 451 when Redis fails or busy. */
  function applyReport(
    reports: Pick<ReportIngest, 'ingest'>,
    raw: Buffer,
    session: SMTPServerSession,
    answer: (err: Error | null, message?: string) => void,
  ): void {
    reports.ingest(raw, { via: 'smtp', sessionId: session.id, remoteAddress: session.remoteAddress }).then(
      (outcome) => {
        if (outcome.result === 'refused') {
          // Too many reports waiting for a parse thread: temporary, the reporter's MTA retries.
          if (outcome.reason === 'busy')
            return answer(reply(ERRORS.BUSY.smtp.code, `${ERRORS.BUSY.smtp.enhanced} Report not read now (busy): ${outcome.detail}`));
          const { code, enhanced } = ERRORS.BAD_REPORT.smtp;
          return answer(reply(code, `${enhanced} Report refused (${outcome.reason}): ${outcome.detail.replace(/[\r\n]+/g, ' ').slice(0, 300)}`));
        }
        answer(null, outcome.result === 'applied' ? '2.0.0 Report applied' : '2.0.0 Report already received (duplicate)');
      },
      (err: unknown) => {
        log.warn({ sid: session.id, err: (err as Error)?.message ?? String(err) }, 'bounce-mx: DMARC/TLS report could not be stored');
        answer(reply(451, '4.3.0 Temporarily unable to process the report, try again later'));
      },
    );
  }

  // Connection-level failures (resets, failed TLS handshakes) land here; without a listener they would crash.
  server.on('error', (err: Error) => log.debug({ err: err.message }, 'bounce-mx: connection error'));

  return {
    listen() {
      if (closing) return Promise.reject(new Error('bounce MX is closed'));
      listening ??= new Promise<number>((resolve, reject) => {
        const onError = (err: NodeJS.ErrnoException): void =>
          reject(
            new Error(
              `feedback.port = ${config.feedback.port}: cannot listen on ${config.feedback.host}:${config.feedback.port} (${err.code ?? err.message})`,
              { cause: err },
            ),
          );
        server.server.once('error', onError);
        server.listen(config.feedback.port, config.feedback.host, () => {
          server.server.off('error', onError);
          const port = (server.server.address() as AddressInfo).port;
          log.info({ host: config.feedback.host, port, domain: config.bounce.domain }, 'bounce MX listening');
          resolve(port);
        });
      });
      return listening;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        if (dataStreams.inFlight === 0) for (const conn of server.connections) conn.send(421, '4.3.2 Service shutting down');
      });
      return closing;
    },
  };
}

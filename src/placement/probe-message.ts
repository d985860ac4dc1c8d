/**
 * The probe message: the shape of a real verification mail (the booking system's own template when one
 * is registered), with a unique token in the `X-Kurir-Probe` header and in the body so the checker finds
 * it in whichever folder the receiver put it.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { PlacementConfig } from '../config/placement-schema.js';
import { composeMessage } from '../intake/compose.js';
import { ConfigError } from '../lib/errors.js';

/** Header that carries the probe token (searched with IMAP SEARCH HEADER). */
export const PROBE_HEADER = 'X-Kurir-Probe';
/** Tag of every probe message, so it is recognisable in the message API and excluded from confirmation counts. */
export const PROBE_TAG = 'placement-probe';

/** The template texts, read once (files are read at start so a missing file stops start-up with its path). */
export interface ProbeTemplate {
  subject: string;
  text: string;
  html: string | null;
}

/** Reads the configured template; `textFile`/`htmlFile` override `text`/`html`. Throws naming the file when it cannot be read. */
export function loadProbeTemplate(cfg: PlacementConfig['template']): ProbeTemplate {
  const read = (file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`placement.template: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  return {
    subject: cfg.subject,
    text: cfg.textFile ? read(cfg.textFile) : cfg.text,
    html: cfg.htmlFile ? read(cfg.htmlFile) : cfg.html,
  };
}

/** A new probe token: 24 lower-case hex characters, unique per probe. */
export function newProbeToken(): string {
  return `kp${randomBytes(11).toString('hex')}`;
}

function fill(template: string, token: string, code: string): string {
  return template.replaceAll('{{token}}', token).replaceAll('{{code}}', code);
}

/**
 * Builds the probe as an RFC 5322 message (composed like a JSON submission to `POST /v1/messages`).
 * A template without `{{token}}` gets the token on a last line, so the body always carries it.
 */
export async function buildProbe(template: ProbeTemplate, opts: { from: string; to: string; token: string }): Promise<Buffer> {
  const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
  let text = fill(template.text, opts.token, code);
  if (!template.text.includes('{{token}}')) text = `${text.replace(/\s*$/, '')}\n\n${opts.token}\n`;
  let html = template.html ? fill(template.html, opts.token, code) : undefined;
  if (html && !template.html!.includes('{{token}}')) {
    html = html.includes('</body>')
      ? html.replace('</body>', `<p style="color:#999;font-size:11px">${opts.token}</p></body>`)
      : `${html}\n<p>${opts.token}</p>`;
  }
  const { raw } = await composeMessage({
    from: opts.from,
    to: [opts.to],
    subject: fill(template.subject, opts.token, code),
    text,
    html,
    headers: { [PROBE_HEADER]: opts.token },
  });
  return raw;
}

/**
 * The support screen's routes: `GET /console?q=` (search by recipient address, message id or booking
 * reference, told apart by their form: an `@` is an address, a Kurir id is an id, anything else — or an id
 * that finds nothing — a reference) and
 * `POST /console/suppressions/remove` (the same store call as `DELETE /v1/suppressions/:address`).
 */
import type { FastifyInstance } from 'fastify';
import { normalizeAddress } from '../../lib/address.js';
import { KurirError, toKurirError } from '../../lib/errors.js';
import { MESSAGE_ID_PATTERN } from '../../lib/ids.js';
import type { IdPage } from '../../store/message-store-types.js';
import type { MessageView } from '../../store/types.js';
import { presentSuppression } from '../suppressions-routes.js';
import type { ConsoleOptions } from './options.js';
import { page } from './html.js';
import { removeSuppressionPage, supportPage, type SupportResult } from './support-page.js';

/** Messages listed per search (the newest). */
const SEARCH_LIMIT = 50;

/** Fixed notices after a redirect (the URL carries a code, never text to show). */
const NOTICES: Record<string, string> = { removed: 'The suppression was removed: new messages to this address are accepted again.' };

async function views(opts: ConsoleOptions, ids: string[]): Promise<MessageView[]> {
  return (await Promise.all(ids.map((id) => opts.messages.get(id)))).filter((v): v is MessageView => v !== null);
}

/** The one recipient all these messages went to, or null. */
function soleRecipient(messages: MessageView[]): string | null {
  const all = new Set(messages.flatMap((m) => m.record.recipients.map((r) => r.toLowerCase())));
  return all.size === 1 ? [...all][0] : null;
}

async function search(opts: ConsoleOptions, query: string): Promise<SupportResult> {
  let messages: MessageView[] = [];
  let address: string | null = null;
  let kind: SupportResult['kind'] = 'reference';
  let unavailable: string[] | undefined;
  let more = false;
  const found = async (page: Promise<IdPage>): Promise<MessageView[]> => {
    const p = await page;
    unavailable = p.unavailable;
    more = p.more;
    return views(opts, p.ids);
  };
  if (query.includes('@')) {
    kind = 'address';
    address = normalizeAddress(query, 'q');
    messages = await found(opts.messages.idsByRecipient(address, 0, SEARCH_LIMIT));
  } else {
    const byId = MESSAGE_ID_PATTERN.test(query) ? await opts.messages.get(query) : null;
    if (byId) kind = 'id';
    messages = byId ? [byId] : await found(opts.messages.idsByReference(query, 0, SEARCH_LIMIT));
    address = soleRecipient(messages);
  }
  const provider = address && opts.providerOf ? opts.providerOf(address) : null;
  const [suppression, placement, resend] = await Promise.all([
    address && opts.suppressions ? opts.suppressions.get(address) : Promise.resolve(undefined),
    provider && opts.placement ? opts.placement.results(provider, 1).then((r) => r[0] ?? null) : Promise.resolve(null),
    address && opts.resendHint ? opts.resendHint(address) : Promise.resolve(null),
  ]);
  return {
    query,
    kind,
    address,
    provider,
    messages,
    ...(suppression !== undefined ? { suppression } : {}),
    placement,
    resend,
    now: opts.clock.now(),
    more,
    ...(unavailable ? { unavailableShards: unavailable } : {}),
  };
}

/** Registers the support routes on the console instance (its hooks give them their session and CSRF checks). */
export async function consoleSupportRoutes(app: FastifyInstance, opts: ConsoleOptions): Promise<void> {
  app.get<{ Querystring: { q?: string; done?: string } }>('/console', { schema: { hide: true }, config: { auditRead: 'view' } }, async (request, reply) => {
    const session = request.consoleSession!;
    const q = typeof request.query.q === 'string' ? request.query.q.trim() : '';
    let result: SupportResult | null = null;
    if (q) {
      const target = q.includes('@') || MESSAGE_ID_PATTERN.test(q) ? q : `reference:${q}`;
      request.auditDetail = { target };
      try {
        result = await search(opts, q);
      } catch (err) {
        throw toKurirError(err);
      }
      // As the API's search: the messages shown, and whether more matched than the newest SEARCH_LIMIT.
      request.auditDetail = { target, after: { rows: result.messages.length, nextPage: result.more === true } };
    }
    const done = request.query.done;
    // Own keys only: `constructor` or `toString` would otherwise show Object.prototype's functions as text.
    const notice = done && Object.hasOwn(NOTICES, done) ? NOTICES[done] : undefined;
    const user = { name: session.name, role: session.role, csrf: session.csrf };
    return reply.type('text/html; charset=utf-8').send(page('Support', supportPage(result, notice), user));
  });

  // Removing asks first (it cannot be undone): the GET shows the suppression and the button that removes it.
  app.get<{ Querystring: { address?: string } }>(
    '/console/suppressions/remove',
    { schema: { hide: true }, config: { auditRead: 'view' } },
    async (request, reply) => {
      const suppressions = opts.suppressions;
      if (!suppressions) throw new KurirError('NOT_FOUND', 'The suppression list is not available on this gateway');
      const address = normalizeAddress(String(request.query.address ?? ''), 'address');
      request.auditDetail = { target: address };
      const s = await suppressions.get(address);
      if (!s) throw new KurirError('NOT_FOUND', `${address} is not suppressed`, { field: 'address' });
      const session = request.consoleSession!;
      const user = { name: session.name, role: session.role, csrf: session.csrf };
      return reply.type('text/html; charset=utf-8').send(page(`Remove the suppression of ${address}?`, removeSuppressionPage(s, session.csrf), user));
    },
  );

  app.post<{ Body: { address?: string; confirm?: string } }>('/console/suppressions/remove', { schema: { hide: true } }, async (request, reply) => {
    const suppressions = opts.suppressions;
    if (!suppressions) throw new KurirError('NOT_FOUND', 'The suppression list is not available on this gateway');
    const address = normalizeAddress(String(request.body?.address ?? ''), 'address');
    if (request.body?.confirm !== 'yes') throw new KurirError('VALIDATION', 'confirm: remove from the confirmation page', { field: 'confirm' });
    const before = await suppressions.get(address);
    request.auditDetail = { target: address, ...(before ? { before: presentSuppression(before) } : {}) };
    if (!before || !(await suppressions.remove(address))) throw new KurirError('NOT_FOUND', `${address} is not suppressed`, { field: 'address' });
    request.log.info({ address, by: request.consoleSession!.name, via: 'console' }, 'suppression removed');
    return reply
      .code(303)
      .header('location', `/console?q=${encodeURIComponent(address)}&done=removed`)
      .send();
  });
}

/**
 * The checks of a credential's scope (role, domains, priorities, webhook) on create and change, each refusal a
 * 400 naming the field (docs/credentials.md).
 */
import { WEBHOOK_EVENT_TYPES } from '../config/credentials-schema.js';
import { PRIORITIES } from '../config/schema.js';
import { KurirError } from '../lib/errors.js';
import { webhookUrlProblem } from '../lib/webhook-url.js';
import { ROLES, type Role, type StoredCredential } from '../store/credential-store.js';

/** The scope fields of a credential, as given to create and change it. */
export interface CredentialScopeInput {
  role?: Role;
  domains?: string[];
  priorities?: string[] | null;
  limits?: { perSecond?: number | null; perDay?: number | null } | null;
  /** API keys: the webhook target (null: none), as `apiKeys[].webhook` in the configuration. */
  webhook?: { url: string; secret: string; events?: string[] | null } | null;
}

/** Throws VALIDATION naming the first field of `input` that a credential of `kind` may not have. */
export function validateCredentialScope(input: CredentialScopeInput, kind: StoredCredential['kind'], senderDomains: ReadonlySet<string>): void {
  if (input.role !== undefined && !ROLES.includes(input.role))
    throw new KurirError('VALIDATION', `role: must be one of ${ROLES.join(', ')}`, { field: 'role' });
  if (kind === 'smtp-account' && input.role !== undefined && input.role !== 'send') {
    throw new KurirError('VALIDATION', 'role: SMTP accounts only submit mail; their role is send', { field: 'role' });
  }
  if (input.domains && input.domains.length > 1 && input.domains.includes('*')) {
    throw new KurirError('VALIDATION', 'domains: "*" (every sender domain) stands alone; list domains or give ["*"]', { field: 'domains' });
  }
  input.domains?.forEach((d, i) => {
    const domain = d.toLowerCase();
    if (domain !== '*' && !senderDomains.has(domain)) {
      throw new KurirError('VALIDATION', `domains[${i}]: ${d} is not a configured sender domain (or *)`, { field: `domains[${i}]` });
    }
  });
  if (input.webhook) {
    if (kind !== 'api-key') throw new KurirError('VALIDATION', 'webhook: only API keys have a webhook', { field: 'webhook' });
    const urlProblem = webhookUrlProblem(input.webhook.url ?? '');
    if (urlProblem) throw new KurirError('VALIDATION', `webhook.url: ${urlProblem}`, { field: 'webhook.url' });
    if ((input.webhook.secret ?? '').length < 16) throw new KurirError('VALIDATION', 'webhook.secret: at least 16 characters', { field: 'webhook.secret' });
    // A line break or other control character cannot be typed into the receiver's configuration reliably.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    if (/[\x00-\x1f\x7f]/.test(input.webhook.secret)) {
      throw new KurirError('VALIDATION', 'webhook.secret: printable characters only (no line break or other control character)', { field: 'webhook.secret' });
    }
    input.webhook.events?.forEach((e, i) => {
      if (!(WEBHOOK_EVENT_TYPES as readonly string[]).includes(e)) {
        throw new KurirError('VALIDATION', `webhook.events[${i}]: one of ${WEBHOOK_EVENT_TYPES.join(', ')}`, { field: `webhook.events[${i}]` });
      }
    });
  }
  input.priorities?.forEach((p, i) => {
    if (!(PRIORITIES as readonly string[]).includes(p))
      throw new KurirError('VALIDATION', `priorities[${i}]: must be one of ${PRIORITIES.join(', ')}`, { field: `priorities[${i}]` });
    if (input.priorities!.indexOf(p) !== i) throw new KurirError('VALIDATION', `priorities[${i}]: ${p} is listed twice`, { field: `priorities[${i}]` });
  });
}

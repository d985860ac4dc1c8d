/**
 * Server-rendered HTML for the console: a tagged template that escapes every interpolated value, so a
 * page cannot forget to. Only values wrapped by `html` itself (nested fragments) pass through as markup.
 */

/** A fragment of markup already escaped (made only by {@link html}). */
export class Html {
  constructor(readonly markup: string) {}
  /** The markup as it is: a fragment in a plain template string or given to `String()` is not escaped again. */
  toString(): string {
    return this.markup;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for use in element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.markup;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(value);
}

/** `html\`<p>${text}</p>\``: every value escaped, except nested `html` fragments and arrays of them. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}

/** Who is logged in, for the page header. */
export interface PageUser {
  name: string;
  role: 'support' | 'admin';
  csrf: string;
}

/** A whole page: header with navigation (admin links only for admins) and logout, then the content. */
export function page(title: string, content: Html, user: PageUser | null): string {
  const nav = user
    ? html`<nav aria-label="Console">
        <a href="/console">Support</a>
        ${user.role === 'admin' ? html`<a href="/console/incidents">Incidents</a> <a href="/console/domains">Domains</a> <a href="/console/providers">Providers</a> <a href="/console/credentials">Credentials</a>` : ''}
        <form method="post" action="/console/logout" class="inline">
          <input type="hidden" name="csrf" value="${user.csrf}">
          <button type="submit">Log out ${user.name}</button>
        </form>
      </nav>`
    : '';
  return `<!doctype html>${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Kurir console</title>
<link rel="stylesheet" href="/console/console.css">
</head>
<body>
<header><span class="brand">Kurir console</span>${nav}</header>
<main id="main">
<h1>${title}</h1>
${content}
</main>
</body>
</html>`}`;
}

/** A time as people read it, in UTC (the console does not know the reader's zone). */
export function when(ms: number | string | undefined | null): string {
  if (ms === undefined || ms === null) return '—';
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '—' : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/**
 * A minimal browser stand-in for the web console over real HTTP: keeps cookies, fills the login form
 * (with its login token) and posts forms without following redirects, so tests see each answer.
 */
export interface ConsoleAnswer {
  status: number;
  location: string | null;
  setCookie: string[];
  body: string;
  headers: Headers;
}

export class ConsoleClient {
  readonly jar = new Map<string, string>();

  constructor(readonly base: string) {}

  private cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** A request with the jar's cookies; Set-Cookie answers update the jar. */
  async request(method: string, path: string, form?: Record<string, string>, extraHeaders: Record<string, string> = {}): Promise<ConsoleAnswer> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (this.jar.size) headers.cookie = this.cookieHeader();
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(this.base + path, { method, headers, body: form ? new URLSearchParams(form).toString() : undefined, redirect: 'manual' });
    const setCookie = res.headers.getSetCookie();
    for (const c of setCookie) {
      const [pair, ...attrs] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return { status: res.status, location: res.headers.get('location'), setCookie, body: await res.text(), headers: res.headers };
  }

  get(path: string): Promise<ConsoleAnswer> {
    return this.request('GET', path);
  }

  post(path: string, form: Record<string, string>): Promise<ConsoleAnswer> {
    return this.request('POST', path, form);
  }

  /** Opens the login page and submits `key`; answers the POST's answer. */
  async login(key: string): Promise<ConsoleAnswer> {
    const page = await this.get('/console/login');
    const token = /name="login" value="([^"]+)"/.exec(page.body)?.[1];
    if (!token) throw new Error(`no login token on the login page (${page.status})`);
    return this.post('/console/login', { login: token, key });
  }

  /** The CSRF token of the page at `path` (from its first form). */
  async csrf(path = '/console'): Promise<string> {
    const page = await this.get(path);
    const token = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
    if (!token) throw new Error(`no CSRF token on ${path} (${page.status})`);
    return token;
  }

  /** The one-time tokens (`form` field) of the create and rotate forms on `path`, in page order. */
  async formTokens(path: string): Promise<string[]> {
    const page = await this.get(path);
    return [...page.body.matchAll(/name="form" value="([^"]+)"/g)].map((m) => m[1]);
  }
}

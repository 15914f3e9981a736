/** Parses a Postgres connection URL, or returns a sentence saying what is wrong with it. */
export function checkPostgresUrl(value: string): { ok: true; url: URL } | { ok: false; problem: string } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { ok: false, problem: 'is not a URL (expected postgres://user@host:5432/database)' };
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return { ok: false, problem: `must start with postgres:// or postgresql:// (got ${url.protocol}//)` };
  }
  if (!url.hostname && !url.searchParams.get('host')) {
    return { ok: false, problem: 'has no host (expected postgres://user@host:5432/database)' };
  }
  return { ok: true, url };
}

/** The URL with its password replaced, safe for logs. */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password) copy.password = '***';
  return copy.href;
}

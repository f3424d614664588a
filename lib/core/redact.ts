/**
 * Secrets never reach a log line, an error message or metadata. Known secret values are
 * replaced wherever they appear; connection strings lose their password whatever it is.
 */
const URL_PASSWORD = /\b(postgres(?:ql)?:\/\/[^:/?#\s@]*:)([^@\s]*)@/gi;
const ASSIGNMENT = /\b(PGPASSWORD|PASSWORD|DATABASE_URL|WEBHOOK_URL)=(\S+)/gi;

export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  // Longest first: a secret that contains another (a URL and its password) goes whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (s && s.length >= 3) out = out.split(s).join('***');
  }
  out = out.replace(URL_PASSWORD, '$1***@');
  out = out.replace(ASSIGNMENT, '$1=***');
  return out;
}

/**
 * Every form a target's credentials can take in text: the password, the DATABASE_URL, and the
 * URL's own password both as written (percent-encoded) and decoded (what reaches PGPASSWORD).
 */
export function credentialSecrets(c: { password?: string; databaseUrl?: string }): string[] {
  const out = [c.password, c.databaseUrl];
  const m = c.databaseUrl ? /^postgres(?:ql)?:\/\/[^:/?#@\s]*:([^@\s]*)@/i.exec(c.databaseUrl) : null;
  if (m?.[1]) {
    out.push(m[1]);
    try {
      out.push(decodeURIComponent(m[1]));
    } catch {
      /* not valid percent-encoding: the raw form is all there is */
    }
  }
  return unique(out);
}

/** A webhook URL's secrets: the URL, and its path and query (a webhook's token usually is its path). */
export function webhookSecrets(url: string | undefined): string[] {
  if (!url) return [];
  try {
    const u = new URL(url);
    return unique([url, u.pathname + u.search].filter((s) => s.length > 1));
  } catch {
    return [url];
  }
}

function unique(values: readonly (string | undefined)[]): string[] {
  return [...new Set(values.filter((s): s is string => !!s))];
}

/** pino redaction paths, configured once for the root logger. */
export const LOG_REDACT_PATHS = [
  'password',
  '*.password',
  'PGPASSWORD',
  '*.PGPASSWORD',
  'env',
  '*.env',
  'DATABASE_URL',
  '*.DATABASE_URL',
  'databaseUrl',
  '*.databaseUrl',
  'webhookUrl',
  '*.webhookUrl',
  'credentials',
  '*.credentials',
];

/**
 * Secrets never reach a log line, an error message or metadata. Known secret values are
 * replaced wherever they appear; connection strings lose their password whatever it is.
 */
const URL_PASSWORD = /\b(postgres(?:ql)?:\/\/[^:/?#\s@]*:)([^@\s]*)@/gi;
const ASSIGNMENT = /\b(PGPASSWORD|PASSWORD|DATABASE_URL|WEBHOOK_URL)=(\S+)/gi;

export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) {
    if (s && s.length >= 3) out = out.split(s).join('***');
  }
  out = out.replace(URL_PASSWORD, '$1***@');
  out = out.replace(ASSIGNMENT, '$1=***');
  return out;
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

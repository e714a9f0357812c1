import pino, { type Logger } from 'pino';

/** Paths pino blanks in every log line: tokens never reach a log. */
export const REDACT_PATHS = [
  'token',
  'upload_token',
  'admin_token',
  'readonly_token',
  '*.token',
  '*.upload_token',
  '*.admin_token',
  '*.readonly_token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'config.admin_token',
  'config.readonly_token',
];

/** A JSON logger with tokens redacted; writes to `dest` (stdout by default). */
export function createLogger(level: string, dest?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'observd' } }, dest);
}
export type { Logger };

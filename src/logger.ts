import { createRequire } from 'node:module';
import { pino, type Logger, type DestinationStream } from 'pino';
import type prettyFactory from 'pino-pretty';

// pino-pretty (30 modules) is loaded only when pretty output is asked for: not on a server's start.
const require = createRequire(import.meta.url);

export type { Logger };

/**
 * Paths pino blanks out wherever they appear in a log object. Handlers log data, not
 * requests: these are a second net for tokens, signatures and secrets.
 */
export const REDACT_PATHS = [
  'token', '*.token', 'access_token', '*.access_token', 'refresh_token', '*.refresh_token',
  'signature', '*.signature', 'signing_key', '*.signing_key', 'authorization', '*.authorization',
  'apiKey', '*.apiKey', 'api_key', '*.api_key', 'secret', '*.secret', 'secrets', '*.secrets',
  'privateKey', '*.privateKey', 'headers.authorization', 'headers["x-signature"]',
];

export interface LoggerOptions {
  level: string;
  pretty?: boolean;
  /** Where lines go; tests pass a stream to capture them. Defaults to stdout. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  const options = {
    level: opts.level,
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  // pino-pretty runs in-process (not as a worker transport) so the CLI works when bundled.
  if (opts.pretty) {
    const pretty = require('pino-pretty') as typeof prettyFactory;
    return pino(options, pretty({ colorize: process.stdout.isTTY, destination: 1 }));
  }
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

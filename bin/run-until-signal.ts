import type { Logger } from '../src/logger.js';

/**
 * Keeps a started server running until SIGTERM/SIGINT, then stops it gracefully. A stray
 * promise rejection is a bug to log, not a reason to drop every connection: it is logged and
 * the server keeps serving (Node would otherwise end the process).
 */
export function runUntilSignal(app: { stop(): Promise<void> }, log: Logger): Promise<void> {
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled promise rejection'));
  return new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'shutting down');
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      app.stop().then(resolve, (e) => {
        log.error({ err: e }, 'shutdown failed');
        resolve();
      });
    };
    const onTerm = () => shutdown('SIGTERM');
    const onInt = () => shutdown('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
}

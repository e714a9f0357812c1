import { createDaemon } from '../daemon.js';
import { commonArgs } from './args.js';

/** `observd serve`: runs the daemon until SIGTERM/SIGINT, then drains and exits 0. */
export async function serveCommand(argv: string[]): Promise<number> {
  const config = commonArgs(argv).config();
  const daemon = createDaemon(config);
  await daemon.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      daemon.logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await daemon.close();
  return 0;
}

import { connect } from 'node:net';

/**
 * Writes `payload` on a raw TCP socket to 127.0.0.1:`port` (a string as UTF-8, a Buffer as is),
 * then `drip` every 100 ms if given, and resolves with everything the server answered (UTF-8)
 * once it closes or `timeoutMs` passes. Rejects on a socket error, except while dripping: there
 * the server cutting the slow client is the point.
 */
export function rawExchange(port: number, payload: string | Buffer, opts: { drip?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    s.on('data', (b) => chunks.push(b));
    s.on('error', (err) => {
      if (!opts.drip) reject(err);
    });
    s.on('close', () => {
      clearInterval(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    s.setTimeout(opts.timeoutMs ?? 3000, () => s.destroy());
    s.once('connect', () => {
      s.write(payload);
      if (opts.drip) timer = setInterval(() => s.writable && s.write(opts.drip!), 100);
    });
  });
}

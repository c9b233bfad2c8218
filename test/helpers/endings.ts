/** How a stream ended, as its reader saw it: a FIN, or the error code of a reset. */
import type { Duplex } from 'node:stream';

/**
 * Resolves with `'FIN'` when the stream ends cleanly, or with the error's code (`'ECONNRESET'`) when it fails first.
 * Reads and drops whatever arrives meanwhile.
 */
export function howItEnds(stream: Duplex): Promise<string> {
  return new Promise((resolve) => {
    stream.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.name));
    stream.once('end', () => resolve('FIN'));
    stream.on('data', () => {});
    stream.resume();
  });
}

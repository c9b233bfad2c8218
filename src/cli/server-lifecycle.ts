/**
 * What every server command (`proxy`, `gateway`, `bridge`, `echo`) does around its server, in one place: open the
 * access log before anything listens (a path that cannot be written is a configuration error, exit 2), report its
 * first write error once on stderr (logging never stops relaying), and wait for the signal that starts the drain.
 * Anything that fails before "listening" is printed is one line on stderr: exit 2 for configuration, 1 otherwise
 * (a port in use).
 */
import { AccessLog } from '../observe/access-log.js';

/** Opens `--access-log` (`-` is stdout); throws `CONFIG_INVALID` naming the file when it cannot be opened. */
export function openAccessLog(target: string | undefined, command: string): AccessLog {
  return AccessLog.open(target, {
    onError: (e) => {
      const code = (e as NodeJS.ErrnoException).code ?? e.message;
      const where = target === '-' ? 'stdout' : target;
      process.stderr.write(
        `wsvia ${command}: access log ${where}: write failed (${code}); lines are counted in wsvia_access_log_errors_total, relaying goes on\n`,
      );
    },
  });
}

/** Resolves with the first SIGINT or SIGTERM. */
export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

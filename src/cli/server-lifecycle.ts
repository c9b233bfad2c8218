/**
 * What every server command (`proxy`, `gateway`, `bridge`, `echo`) does around its server, in one place: open the
 * access log before anything listens (a path that cannot be written is a configuration error, exit 2), report its
 * first write error once on stderr (logging never stops relaying), and wait for the signal that starts the drain.
 * Anything that fails before "listening" is printed is one line on stderr: exit 2 for configuration, 1 otherwise
 * (a port in use).
 */
import cluster from 'node:cluster';
import { EXIT_CODES, exitCodeOf, isWsviaError } from '../errors.js';
import { AccessLog } from '../observe/access-log.js';
import { formatError, reportError } from './output.js';

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

/** What a `--workers` child tells its primary when it could not start. */
interface StartFailure {
  readonly wsviaStartFailed: { readonly text: string; readonly code: number };
}

/**
 * Reports a start-up failure and returns its exit code. In a `--workers` child the one line goes to the primary,
 * which prints the first of them (N workers failing alike print one line, not N), and the IPC channel is let go
 * so the child can exit.
 */
export function failStart(e: unknown): number {
  if (!cluster.isWorker) return reportError(e);
  const text = isWsviaError(e) ? formatError(e) : `wsvia: ${e instanceof Error ? e.message : String(e)}\n`;
  const code = isWsviaError(e) ? exitCodeOf(e) : EXIT_CODES.failure;
  const failure: StartFailure = { wsviaStartFailed: { text, code } };
  process.send?.(failure, () => cluster.worker?.disconnect());
  return code;
}

/** The failure a worker sent with {@link failStart}, if `message` is one. */
export function startFailure(message: unknown): { text: string; code: number } | undefined {
  const f = (message as Partial<StartFailure> | null)?.wsviaStartFailed;
  return f && typeof f.text === 'string' && typeof f.code === 'number' ? f : undefined;
}

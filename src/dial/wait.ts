/**
 * Waits for one step of a dial: resolves or rejects once, clears its timer and listeners, and honours an
 * AbortSignal. Every step (tcp, tunnel, tls) goes through this, so none can leak a timer or hang.
 */
import { WsviaError } from '../errors.js';

export interface StepControl<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
  /** Registers cleanup to run when the step settles either way. */
  onSettle(fn: () => void): void;
}

export function step<T>(
  timeoutMs: number,
  onTimeout: () => WsviaError,
  signal: AbortSignal | undefined,
  body: (ctl: StepControl<T>) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cleanups: (() => void)[] = [];
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      for (const fn of cleanups.splice(0)) fn();
      return true;
    };
    const timer = setTimeout(() => {
      if (settle()) reject(onTimeout());
    }, timeoutMs);
    cleanups.push(() => clearTimeout(timer));
    if (signal) {
      const onAbort = (): void => {
        if (settle()) {
          reject(
            new WsviaError('CONNECTION_RESET', 'the connection attempt was aborted', {
              hop: 'tcp',
              cause: signal.reason,
            }),
          );
        }
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      cleanups.push(() => signal.removeEventListener('abort', onAbort));
    }
    const ctl: StepControl<T> = {
      resolve: (v) => {
        if (settle()) resolve(v);
      },
      reject: (e) => {
        if (settle()) reject(e);
      },
      onSettle: (fn) => (settled ? fn() : cleanups.push(fn)),
    };
    try {
      body(ctl);
    } catch (e) {
      ctl.reject(e);
    }
  });
}

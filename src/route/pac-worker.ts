/**
 * The body of a PAC worker thread (see {@link compilePac}): QuickJS and pac-resolver load the script once, then
 * answer `FindProxyForURL` calls one at a time. The thread exists so that a hostile script costs the process
 * nothing but this thread: the main thread keeps the deadline and terminates the thread when it passes, whatever
 * QuickJS is doing (it checks its interrupt handler only between allocations, and a script that allocates without
 * end can keep it busy for many seconds).
 *
 * The PAC functions that need the caller (`dnsResolve`, `myIpAddress`) stay synchronous, as PAC scripts expect:
 * the thread posts the question and sleeps on a shared buffer until the main thread writes the answer there.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createPacResolver } from 'pac-resolver';
import { QuickJS } from 'quickjs-wasi';
import { ipBytes } from './cidr.js';
import { ANSWER_HEADER, type FromPacWorker, type PacWorkerData, type ToPacWorker } from './pac-messages.js';

const data = workerData as PacWorkerData;
const port = parentPort;
const slots = new Int32Array(data.answer, 0, 2);
const bytes = new Uint8Array(data.answer, ANSWER_HEADER);

/** Asks the main thread, and sleeps until it answers (it never blocks: a 5 s wait is a lost message). */
function askHost(fn: 'dnsResolve' | 'myIpAddress', arg: string): unknown {
  Atomics.store(slots, 0, 0);
  port?.postMessage({ type: 'host', fn, arg } satisfies FromPacWorker);
  if (Atomics.wait(slots, 0, 0, 5000) === 'timed-out') return null;
  const length = Atomics.load(slots, 1);
  try {
    return JSON.parse(Buffer.from(bytes.subarray(0, length)).toString('utf8')) as unknown;
  } catch {
    return null;
  }
}

function asAddress(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** `isInNet`'s test: the IPv4 address masked equals the pattern masked (the PAC note). */
function inNet(address: string, pattern: string, mask: string): boolean {
  const a = ipBytes(address);
  const p = ipBytes(pattern);
  const m = ipBytes(mask);
  if (!a || !p || !m || a.length !== 4 || p.length !== 4 || m.length !== 4) return false;
  return a.every((byte, i) => (byte & (m[i] as number)) === ((p[i] as number) & (m[i] as number)));
}

const sandbox = {
  dnsResolve: (name: unknown): string | null => asAddress(askHost('dnsResolve', String(name))),
  isResolvable: (name: unknown): boolean => asAddress(askHost('dnsResolve', String(name))) !== null,
  myIpAddress: (): string => asAddress(askHost('myIpAddress', '')) ?? '127.0.0.1',
  // pac-resolver's own isInNet looks names up itself (I/O, and asynchronous): this one asks the caller.
  isInNet: (name: unknown, pattern: unknown, mask: unknown): boolean => {
    const text = String(name);
    const address = ipBytes(text) ? text : asAddress(askHost('dnsResolve', text));
    return address === null ? false : inNet(address, String(pattern), String(mask));
  },
  alert: (message?: unknown): void =>
    port?.postMessage({
      type: 'alert',
      message: typeof message === 'string' ? message : (JSON.stringify(message) ?? ''),
    } satisfies FromPacWorker),
};

function errorOf(e: unknown, id?: number): FromPacWorker {
  const name = e instanceof Error ? e.name : 'Error';
  const message = e instanceof Error ? e.message : String(e);
  return id === undefined ? { type: 'error', name, message } : { type: 'error', id, name, message };
}

async function main(): Promise<void> {
  let find: (url: string, host: string) => Promise<string>;
  try {
    const vm = await QuickJS.create({ memoryLimit: data.memoryLimit });
    // From here on the time is the script's: the main thread starts its load budget.
    port?.postMessage({ type: 'started' } satisfies FromPacWorker);
    find = createPacResolver(vm, data.script, { sandbox: sandbox, filename: data.source });
  } catch (e) {
    port?.postMessage(errorOf(e));
    return;
  }
  port?.on('message', (m: ToPacWorker) => {
    find(m.url, m.host).then(
      (value: unknown) => port.postMessage({ type: 'result', id: m.id, value } satisfies FromPacWorker),
      (e: unknown) => port.postMessage(errorOf(e, m.id)),
    );
  });
  port?.postMessage({ type: 'loaded' } satisfies FromPacWorker);
}

main().catch((e: unknown) => port?.postMessage(errorOf(e)));

/**
 * The load generator: runs one job (see jobs.ts) in its own process, so the measured peer never shares an event
 * loop with its load. Every loop is bounded by a count or a deadline, every connection by a timeout; loopback only.
 */
import net from 'node:net';
import WebSocket from 'ws';
import { ConnectClient, buildConnectRequest } from '../src/protocol/connect-client.js';
import type {
  EchoResult,
  IdleResult,
  Job,
  LatencyResult,
  RateResult,
  ThroughputResult,
  Via,
  WsTarget,
} from './jobs.js';

const HOST = '127.0.0.1';
/** No single connection step may take longer than this; it counts as an error, it never hangs the run. */
const STEP_TIMEOUT_MS = 15_000;

function withTimeout<T>(p: Promise<T>, what: string, ms = STEP_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A TCP connection to 127.0.0.1:port, resolved once connected. */
function tcpConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port });
    s.setNoDelay(true);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** A byte stream to the target along `via`: for a proxy, CONNECT and its 2xx, with any leftover put back. */
async function openTunnel(via: Via): Promise<net.Socket> {
  if (via.kind === 'direct') return tcpConnect(via.port);
  const socket = await tcpConnect(via.proxyPort);
  return new Promise((resolve, reject) => {
    const client = new ConnectClient(`proxy 127.0.0.1:${via.proxyPort}`);
    const fail = (e: Error): void => {
      socket.destroy();
      reject(e);
    };
    const onData = (chunk: Buffer): void => {
      try {
        const r = client.receive(chunk);
        if (!r) return;
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('error', fail);
        if (r.kind !== 'tunnel') return fail(new Error(`proxy answered ${r.head.status} to CONNECT`));
        socket.pause();
        if (r.leftover.length > 0) socket.unshift(Buffer.from(r.leftover));
        resolve(socket);
      } catch (e) {
        fail(e as Error);
      }
    };
    const onEnd = (): void => fail(new Error('proxy closed before answering CONNECT'));
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', fail);
    socket.write(buildConnectRequest({ host: HOST, port: via.targetPort }));
  });
}

function closeGracefully(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.once('close', () => resolve());
    socket.on('error', () => {});
    socket.resume();
    socket.end();
  });
}

async function tcpThroughput(via: Via, bytes: number): Promise<ThroughputResult> {
  const socket = await withTimeout(openTunnel(via), 'tunnel');
  const ack = new Promise<void>((resolve, reject) => {
    socket.once('data', () => resolve());
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the sink acknowledged')));
  });
  socket.resume();
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const header = Buffer.alloc(8);
  header.writeBigUInt64BE(BigInt(bytes));
  const start = process.hrtime.bigint();
  socket.write(header);
  let sent = 0;
  while (sent < bytes) {
    const n = Math.min(chunk.length, bytes - sent);
    sent += n;
    if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
      await new Promise<void>((resolve) => socket.once('drain', resolve));
    }
  }
  await withTimeout(ack, 'sink acknowledgement', 120_000);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await closeGracefully(socket);
  return { seconds, bytes };
}

async function tcpSetup(via: Via, count: number): Promise<LatencyResult> {
  const latenciesMs: number[] = [];
  let errors = 0;
  for (let i = 0; i < count; i++) {
    const start = process.hrtime.bigint();
    try {
      const s = await withTimeout(openTunnel(via), 'tunnel');
      latenciesMs.push(Number(process.hrtime.bigint() - start) / 1e6);
      await withTimeout(closeGracefully(s), 'close');
    } catch {
      errors++;
    }
  }
  return { latenciesMs, errors };
}

async function tcpRate(via: Via, concurrency: number, seconds: number): Promise<RateResult> {
  const start = Date.now();
  const deadline = start + seconds * 1000;
  let completed = 0;
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      try {
        const s = await withTimeout(openTunnel(via), 'tunnel');
        await withTimeout(closeGracefully(s), 'close');
        if (Date.now() <= deadline) completed++;
      } catch {
        errors++;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { completed, errors, seconds: (Date.now() - start) / 1000 };
}

/** A WebSocket to `target`, through its CONNECT proxy if it has one; resolved on `open`. */
async function openWebSocket(target: WsTarget): Promise<WebSocket> {
  const url = new URL(target.url);
  let tunnel: net.Socket | undefined;
  if (target.proxyPort !== undefined) {
    tunnel = await openTunnel({ kind: 'connect', proxyPort: target.proxyPort, targetPort: Number(url.port) });
  }
  const ws = new WebSocket(target.url, target.protocols ? [...target.protocols] : [], {
    perMessageDeflate: false,
    handshakeTimeout: STEP_TIMEOUT_MS,
    ...(tunnel
      ? {
          // The tunnel was paused when CONNECT succeeded; the HTTP client reads it from here on.
          createConnection: (() => tunnel.resume()) as unknown as typeof net.createConnection,
        }
      : {}),
  });
  ws.binaryType = 'nodebuffer';
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.off('error', reject);
      resolve(ws);
    });
    ws.once('error', reject);
  });
}

function closeWebSocket(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    const t = setTimeout(() => {
      ws.terminate();
      resolve();
    }, 2000);
    ws.once('close', () => {
      clearTimeout(t);
      resolve();
    });
    ws.on('error', () => {});
    ws.close(1000);
  });
}

async function wsSetup(target: WsTarget, count: number): Promise<LatencyResult> {
  const latenciesMs: number[] = [];
  let errors = 0;
  for (let i = 0; i < count; i++) {
    const start = process.hrtime.bigint();
    try {
      const ws = await withTimeout(openWebSocket(target), 'websocket');
      latenciesMs.push(Number(process.hrtime.bigint() - start) / 1e6);
      await closeWebSocket(ws);
    } catch {
      errors++;
    }
  }
  return { latenciesMs, errors };
}

async function wsEcho(
  target: WsTarget,
  connections: number,
  size: number,
  window: number,
  seconds: number,
): Promise<EchoResult> {
  let errors = 0;
  const sockets: WebSocket[] = [];
  for (let i = 0; i < connections; i++) {
    try {
      sockets.push(await withTimeout(openWebSocket(target), 'websocket'));
    } catch {
      errors++;
    }
  }
  const payload = Buffer.alloc(size, 0x62);
  const limit = size * window;
  let bytes = 0;
  let running = true;
  const start = process.hrtime.bigint();
  for (const ws of sockets) {
    let outstanding = 0;
    const fill = (): void => {
      while (running && outstanding < limit) {
        outstanding += size;
        ws.send(payload, { binary: true });
      }
    };
    ws.on('message', (data: Buffer) => {
      outstanding -= data.length;
      if (running) bytes += data.length;
      fill();
    });
    ws.on('error', () => errors++);
    fill();
  }
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  await Promise.all(sockets.map((ws) => closeWebSocket(ws)));
  return { bytes, seconds: elapsed, errors };
}

/** Opens `count` connections with `open`, `concurrency` at a time. */
async function openMany<T>(
  count: number,
  concurrency: number,
  open: () => Promise<T>,
): Promise<{ held: T[]; result: IdleResult }> {
  const held: T[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      try {
        held.push(await withTimeout(open(), 'connection'));
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return {
    held,
    result: { opened: held.length, errors, ...(firstError !== undefined ? { firstError } : {}) },
  };
}

async function holdUntilStdinEnds(close: () => void): Promise<void> {
  await new Promise<void>((resolve) => {
    process.stdin.once('end', resolve);
    process.stdin.once('close', resolve);
    process.once('SIGTERM', resolve);
    process.stdin.resume();
  });
  close();
}

async function run(job: Job): Promise<unknown> {
  switch (job.kind) {
    case 'tcp-throughput':
      return tcpThroughput(job.via, job.bytes);
    case 'tcp-setup':
      return tcpSetup(job.via, job.count);
    case 'tcp-rate':
      return tcpRate(job.via, job.concurrency, job.seconds);
    case 'ws-setup':
      return wsSetup(job.ws, job.count);
    case 'ws-echo':
      return wsEcho(job.ws, job.connections, job.size, job.window, job.seconds);
    case 'tcp-idle': {
      const { held, result } = await openMany(job.count, job.concurrency, () => openTunnel(job.via));
      for (const s of held) s.on('error', () => {});
      process.stdout.write(`${JSON.stringify(result)}\n`);
      await holdUntilStdinEnds(() => held.forEach((s) => s.destroy()));
      return undefined;
    }
    case 'ws-idle': {
      const { held, result } = await openMany(job.count, job.concurrency, () => openWebSocket(job.ws));
      for (const ws of held) ws.on('error', () => {});
      process.stdout.write(`${JSON.stringify(result)}\n`);
      await holdUntilStdinEnds(() => held.forEach((ws) => ws.terminate()));
      return undefined;
    }
    default: {
      const never: never = job;
      throw new Error(`unknown job ${JSON.stringify(never)}`);
    }
  }
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
run(job).then(
  (result) => {
    if (result !== undefined) process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (e: unknown) => {
    process.stderr.write(`load: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);

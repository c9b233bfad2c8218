/**
 * A micro-benchmark of the proxy relay alone (not `npm run bench`): starts `wsvia proxy` (or squid) in a fresh child
 * process, pushes MB megabytes through one CONNECT tunnel to a sink on loopback and reads the server's CPU seconds
 * (utime + stime from /proc/PID/stat) and the wall time, first opens N idle tunnels (in the fresh process) and reads the VmRSS delta from
 * /proc/PID/status. Prints one JSON line per run.
 *
 *   node dist/bench/relay-micro.js [wsvia|squid] [MB=1024] [N=2000] [--down] [--relay=js|splice|auto] [node flags...]
 */
import net from 'node:net';
import path from 'node:path';
import { freePort, startPeer } from '../test/helpers/process.js';
import { startSquid } from './peers.js';
import { cpuSeconds, rssKiB } from './procfs.js';

async function startWsvia(
  flags: string[],
  proxyArgs: string[],
): Promise<{ port: number; pid: number; stop: () => Promise<void> }> {
  const port = await freePort();
  const main = path.resolve(import.meta.dirname, '../src/cli/main.js');
  const args = [
    ...flags,
    main,
    'proxy',
    '--port',
    String(port),
    '--allow-private',
    '--allow-ports',
    '*',
    '--max-tunnels',
    '10000',
    '--max-tunnels-per-client',
    '10000',
    ...proxyArgs,
  ];
  const peer = await startPeer(process.execPath, args, { port, timeoutMs: 30_000 });
  return { port, pid: peer.process.pid as number, stop: () => peer.stop() };
}

function connectTunnel(proxyPort: number, targetPort: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: proxyPort });
    let head = '';
    s.once('error', reject);
    s.write(`CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\nHost: 127.0.0.1:${targetPort}\r\n\r\n`);
    const onData = (b: Buffer): void => {
      head += b.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      s.off('error', reject);
      // Bytes that came with the answer head (the destination may send at once) count as received.
      received += head.length - head.indexOf('\r\n\r\n') - 4;
      if (!head.startsWith('HTTP/1.1 200') && !head.startsWith('HTTP/1.0 200'))
        reject(new Error(`CONNECT refused: ${head.split('\r\n')[0]}`));
      else resolve(s);
    };
    s.on('data', onData);
  });
}

let total = 0;
let received = 0;

function pushAll(s: net.Socket): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 7);
  let sent = 0;
  return new Promise<void>((resolve) => {
    const pump = (): void => {
      while (sent < total) {
        sent += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
      resolve();
    };
    pump();
  });
}

async function main(): Promise<void> {
  const [which = 'wsvia', mb = '1024', n = '2000', ...rest] = process.argv.slice(2);
  // --down: the destination sends and the client reads (the direction of a download).
  const down = rest.includes('--down');
  // --relay=X goes to `wsvia proxy`; everything else is a node flag.
  const proxyArgs = rest.filter((f) => f.startsWith('--relay='));
  const flags = rest.filter((f) => f !== '--down' && !f.startsWith('--relay='));
  total = Number(mb) * 1024 * 1024;
  const idle = Number(n);
  // The sink counts bytes and tells when all arrived; idle connections are held open.
  let done: (() => void) | undefined;
  const held: net.Socket[] = [];
  let pushNext = false;
  const sink = net.createServer((c) => {
    held.push(c);
    if (pushNext) pushAll(c).catch(() => c.destroy());
    pushNext = false;
    c.on('data', (b: Buffer) => {
      received += b.length;
      if (received >= total) done?.();
    });
    c.on('error', () => {});
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const sinkPort = (sink.address() as net.AddressInfo).port;
  const server = which === 'squid' ? await startSquid() : await startWsvia(flags, proxyArgs);
  try {
    // Memory: N idle tunnels, opened 50 at a time.
    await new Promise((r) => setTimeout(r, 500));
    const rss0 = rssKiB(server.pid);
    const tunnels: net.Socket[] = [];
    for (let i = 0; i < idle; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, idle - i) }, () => connectTunnel(server.port, sinkPort)),
      );
      tunnels.push(...batch);
    }
    await new Promise((r) => setTimeout(r, 1500));
    const rss1 = rssKiB(server.pid);
    for (const s of tunnels) s.destroy();
    await new Promise((r) => setTimeout(r, 1000));
    // Throughput and CPU: one tunnel, 64 KiB writes with backpressure.
    const finished = new Promise<void>((r) => (done = r));
    const cpu0 = cpuSeconds(server.pid);
    const t0 = process.hrtime.bigint();
    pushNext = down;
    const t = await connectTunnel(server.port, sinkPort);
    if (down)
      t.on('data', (b: Buffer) => {
        received += b.length;
        if (received >= total) done?.();
      });
    else await pushAll(t);
    await finished;
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = cpuSeconds(server.pid) - cpu0;
    t.destroy();
    process.stdout.write(
      `${JSON.stringify({
        server: which,
        direction: down ? 'down' : 'up',
        flags: [...proxyArgs, ...flags].join(' '),
        mb: Number(mb),
        cpuSecPerGB: +((cpu * (1024 * 1024 * 1024)) / total).toFixed(3),
        mbPerSec: +(Number(mb) / secs).toFixed(0),
        idleTunnels: idle,
        kibPerIdleTunnel: +((rss1 - rss0) / idle).toFixed(2),
      })}\n`,
    );
  } finally {
    await server.stop();
    for (const c of held) c.destroy();
    sink.close();
  }
}

await main();

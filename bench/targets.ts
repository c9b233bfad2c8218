/**
 * The servers every peer stands in front of, in a child process of their own so that neither the measured peer
 * nor the load generator pays for them:
 * - a TCP sink: the client sends an 8-byte big-endian length, then that many bytes; the sink answers one byte
 *   when it has them all (the end of a throughput run, seen by the client). Connections that send nothing
 *   just stay open (idle tunnels, setup runs).
 * - a TCP echo (what websockify and `wsvia bridge` front).
 * - the project's WebSocket echo server (`ws`, no compression), what the gateways and proxies carry.
 * Prints one JSON line with the ports, then runs until stdin closes or SIGTERM.
 */
import net from 'node:net';
import { startEchoServer } from '../src/echo/echo-server.js';

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () =>
      resolve((server.address() as net.AddressInfo).port),
    );
  });
}

const sink = net.createServer((socket) => {
  socket.on('error', () => {});
  let header = Buffer.alloc(0);
  let expected = -1;
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    let data = chunk;
    if (expected < 0) {
      header = Buffer.concat([header, data]);
      if (header.length < 8) return;
      expected = Number(header.readBigUInt64BE(0));
      data = header.subarray(8);
    }
    received += data.length;
    if (received >= expected && expected >= 0) {
      socket.write(Buffer.of(1));
      expected = -1;
      received = 0;
      header = Buffer.alloc(0);
    }
  });
  socket.on('end', () => socket.end());
});

const echo = net.createServer((socket) => {
  socket.on('error', () => {});
  socket.pipe(socket);
});

const [sinkPort, echoPort] = await Promise.all([listen(sink), listen(echo)]);
const ws = await startEchoServer({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ sinkPort, echoPort, wsPort: ws.port })}\n`);

const stop = (): void => {
  sink.close();
  echo.close();
  ws.close().catch(() => {});
  process.exit(0);
};
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();

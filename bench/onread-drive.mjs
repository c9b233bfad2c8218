// Drives bench/onread-relay.mjs: see docs/performance.md.
import net from 'node:net';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
const mode = process.argv[2];
const total = 1024 * 1024 * 1024;
// source: a server that sends total bytes to whoever connects (download direction through onread socket)
const src = net.createServer((c) => {
  const chunk = Buffer.alloc(65536, 1);
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!c.write(chunk)) return void c.once('drain', pump);
    }
    c.end();
  };
  pump();
  c.on('error', () => {});
});
await new Promise((r) => src.listen(0, '127.0.0.1', r));
const child = spawn(
  process.execPath,
  [new URL('onread-relay.mjs', import.meta.url).pathname, mode, String(src.address().port)],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const port = Number(await new Promise((r) => child.stdout.once('data', (d) => r(String(d).trim()))));
const cpu = () => {
  const s = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (+f[11] + +f[12]) / 100;
};
const c0 = cpu();
const t0 = Date.now();
let got = 0;
const s = net.connect(port, '127.0.0.1');
await new Promise((r) => {
  s.on('data', (d) => {
    got += d.length;
  });
  s.on('end', r);
});
console.log(
  JSON.stringify({
    mode,
    got: got === total,
    cpu: +(cpu() - c0).toFixed(2),
    mbps: Math.round(1024 / ((Date.now() - t0) / 1000)),
  }),
);
child.kill();
src.close();

/**
 * Runs one of the npm CONNECT proxies wsvia is compared with, in a process of its own, as their READMEs show:
 * `node dist/bench/node-proxy.js proxy|proxy-chain PORT`. Both listen on 127.0.0.1 and run until SIGTERM.
 */
import http from 'node:http';
import { createProxy } from 'proxy';
import { Server as ProxyChainServer } from 'proxy-chain';

const [which, portText] = process.argv.slice(2);
const port = Number(portText);

if (which === 'proxy') {
  const server = createProxy(http.createServer());
  server.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => process.exit(0));
} else if (which === 'proxy-chain') {
  const server = new ProxyChainServer({ port, host: '127.0.0.1', verbose: false });
  await server.listen();
  process.on('SIGTERM', () => process.exit(0));
} else {
  process.stderr.write(`usage: node-proxy.js proxy|proxy-chain PORT (got ${String(which)})\n`);
  process.exit(2);
}

/** `npm start` runs `wsvia demo`: it must show the whole handshake and exit 0 on a fresh machine. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';

test('wsvia demo prints the transcript hop by hop and exits 0', async () => {
  const r = await runCli(['demo'], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  for (const line of [
    'client > server',
    'GET / HTTP/1.1',
    'server > client',
    'HTTP/1.1 101 Switching Protocols',
    'done',
  ]) {
    assert.ok(r.stderr.includes(line), `demo output lacks ${JSON.stringify(line)}:\n${r.stderr}`);
  }
  assert.match(r.stdout, /hello through wsvia/);
});

/** The package as users import it: `import { connect } from 'wsvia'` and the `wsvia` bin. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';

test("import { connect } from 'wsvia' resolves the typed library entry", async () => {
  const lib = (await import('wsvia')) as Record<string, unknown>;
  for (const name of [
    'connect',
    'dial',
    'ReconnectingWebSocket',
    'WsviaError',
    'chooseRoute',
    'startEchoServer',
  ]) {
    assert.equal(typeof lib[name], 'function', `wsvia exports ${name}`);
  }
  const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as {
    bin: Record<string, string>;
    types: string;
  };
  assert.ok(fs.existsSync(pkg.bin.wsvia as string), 'the bin is built');
  assert.ok(fs.existsSync(pkg.types), 'the type declarations are built');
});

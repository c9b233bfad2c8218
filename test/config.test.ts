/** config.ts: a config file's top-level keys read as the flags they name. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flagValuesFromConfig, parseConfig, type FlagShape } from '../src/config.js';

const OPTIONS: Readonly<Record<string, FlagShape>> = {
  listen: { type: 'string' },
  'allow-ports': { type: 'string' },
  'allow-origin': { type: 'string', multiple: true },
  'max-tunnels-per-client': { type: 'string' },
  'tls-listen': { type: 'string' },
  'proxy-protocol': { type: 'boolean' },
  config: { type: 'string' },
  help: { type: 'boolean' },
};

function read(yaml: string, others: readonly string[] = []): Record<string, unknown> {
  return flagValuesFromConfig(parseConfig(yaml, 'f.yaml'), OPTIONS, others);
}

function fails(yaml: string, message: RegExp): void {
  assert.throws(
    () => read(yaml),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.match(e.message, message);
      return true;
    },
  );
}

describe('flagValuesFromConfig', () => {
  it('reads values as util.parseArgs gives them: strings, lists for repeatable flags, booleans', () => {
    assert.deepEqual(
      read(
        'listen: 8080\nallow-origin: [https://a.example, https://b.example]\nproxy-protocol: true\nmax-tunnels-per-client: 3\n',
      ),
      {
        listen: '8080',
        'allow-origin': ['https://a.example', 'https://b.example'],
        'proxy-protocol': true,
        'max-tunnels-per-client': '3',
      },
    );
  });

  it('a YAML list for a comma-list flag is its items (allow-ports: [443, 8443])', () => {
    assert.deepEqual(read('allow-ports: [443, 8443]\n'), { 'allow-ports': '443,8443' });
    assert.deepEqual(read('allow-ports: 443,80\n'), { 'allow-ports': '443,80' });
  });

  it('a single value for a repeatable flag is a list of one', () => {
    assert.deepEqual(read('allow-origin: https://a.example\n'), { 'allow-origin': ['https://a.example'] });
  });

  it('an old camelCase, snake_case or plural key names its flag', () => {
    fails('maxTunnelsPerClient: 3\n', /f\.yaml: maxTunnelsPerClient: use max-tunnels-per-client/);
    fails('max_tunnels_per_client: 3\n', /max_tunnels_per_client: use max-tunnels-per-client/);
    fails('allowOrigins: [x]\n', /allowOrigins: use allow-origin/);
  });

  it('an old nested section names the top-level key of each entry', () => {
    fails('tls: { listen: 0 }\n', /f\.yaml: tls\.listen: use tls-listen at the top level/);
    fails(
      'limits: { maxTunnelsPerClient: 3 }\n',
      /limits\.maxTunnelsPerClient: use max-tunnels-per-client at the top level/,
    );
  });

  it('unknown keys, config and help are errors; keys the caller reads itself are let through', () => {
    fails('alow-ports: 443\n', /alow-ports: unknown key/);
    fails('config: other.yaml\n', /config: unknown key/);
    assert.deepEqual(read('routes: [{ path: / }]\nlisten: 1\n', ['routes']), { listen: '1' });
  });

  it('a value of the wrong type names the key', () => {
    fails('proxy-protocol: yes please\n', /proxy-protocol: expected true or false/);
    fails('listen: { host: x }\n', /listen\[0\]: expected a string, got a mapping/);
  });
});

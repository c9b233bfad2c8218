import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePac } from '../../src/route/pac.js';
import { wsviaRejection } from '../helpers/wsvia-rejection.js';

const CORP = `
function FindProxyForURL(url, host) {
  if (isPlainHostName(host) || dnsDomainIs(host, ".local")) return "DIRECT";
  if (shExpMatch(url, "wss://*") && isInNet(dnsResolve(host), "10.0.0.0", "255.0.0.0")) return "DIRECT";
  if (host === "loop.example") { while (true) {} }
  if (host === "throw.example") throw new Error("no rule for " + host);
  if (host === "garbage.example") return "NOPE";
  if (host === "number.example") return 42;
  return "PROXY a.corp:3128; SOCKS5 b.corp:1080; DIRECT";
}`;

describe('compilePac', () => {
  it('evaluates FindProxyForURL with the standard PAC functions and a supplied resolver', async () => {
    const lookups: string[] = [];
    const pac = await compilePac(CORP, {
      source: 'corp.pac',
      host: {
        dnsResolve: (h) => {
          lookups.push(h);
          return h === 'inside.example' ? '10.1.2.3' : '192.0.2.1';
        },
      },
    });
    try {
      assert.equal(await pac.findProxyForUrl('wss://intranet/', 'intranet'), 'DIRECT');
      assert.equal(await pac.findProxyForUrl('wss://inside.example/', 'inside.example'), 'DIRECT');
      const r = await pac.resolve('wss://echo.example/', 'echo.example');
      assert.equal(r.raw, 'PROXY a.corp:3128; SOCKS5 b.corp:1080; DIRECT');
      assert.deepEqual(
        r.entries.map((e) => e.text),
        ['PROXY a.corp:3128', 'SOCKS5 b.corp:1080', 'DIRECT'],
      );
      assert.deepEqual(lookups, ['inside.example', 'echo.example']);
    } finally {
      pac.dispose();
    }
  });

  it('a PAC that loops is interrupted at its budget, and the script stays usable', async () => {
    const pac = await compilePac(CORP, { source: 'corp.pac', timeoutMs: 150 });
    try {
      const e = await wsviaRejection(pac.findProxyForUrl('wss://loop.example/', 'loop.example'));
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.equal(e.hop, 'route');
      assert.match(e.message, /corp\.pac did not finish for wss:\/\/loop\.example\/ within 150 ms/);
      assert.equal(await pac.findProxyForUrl('wss://x/', 'x'), 'DIRECT');
    } finally {
      pac.dispose();
    }
  });

  it('a PAC that loops while loading is interrupted too', async () => {
    const e = await wsviaRejection(
      compilePac('while (true) {} function FindProxyForURL() { return "DIRECT"; }', {
        source: 'bad.pac',
        timeoutMs: 100,
      }),
    );
    assert.match(e.message, /did not finish to load within 100 ms/);
  });

  it('a PAC that throws names the error', async () => {
    const pac = await compilePac(CORP, { source: 'corp.pac' });
    try {
      const e = await wsviaRejection(pac.resolve('wss://throw.example/', 'throw.example'));
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.match(e.message, /failed for wss:\/\/throw\.example\/: Error: no rule for throw\.example/);
    } finally {
      pac.dispose();
    }
  });

  it('garbage and non-string results are clear errors', async () => {
    const pac = await compilePac(CORP, { source: 'corp.pac' });
    try {
      let e = await wsviaRejection(pac.resolve('wss://garbage.example/', 'garbage.example'));
      assert.match(
        e.message,
        /returned "NOPE", which holds no usable entry for wss:\/\/garbage\.example\/ \(PAC corp\.pac\)/,
      );
      e = await wsviaRejection(pac.resolve('wss://number.example/', 'number.example'));
      assert.match(e.message, /returned number, not a string/);
    } finally {
      pac.dispose();
    }
  });

  it('a script that does not parse, or lacks FindProxyForURL, fails to load', async () => {
    let e = await wsviaRejection(compilePac('function FindProxyForURL( {', { source: 'syntax.pac' }));
    assert.equal(e.code, 'CONFIG_INVALID');
    e = await wsviaRejection(compilePac('var x = 1;', { source: 'empty.pac' }));
    assert.match(e.message, /FindProxyForURL/);
  });

  it('the sandbox has no host: no require, process, fetch or file system', async () => {
    const pac = await compilePac(
      `function FindProxyForURL(url, host) {
         return [typeof require, typeof process, typeof fetch, typeof std, typeof os, typeof globalThis.Deno].join(",");
       }`,
      { source: 'probe.pac' },
    );
    try {
      assert.equal(
        await pac.findProxyForUrl('http://x/', 'x'),
        'undefined,undefined,undefined,undefined,undefined,undefined',
      );
    } finally {
      pac.dispose();
    }
  });

  it('a script that allocates without bound hits the memory limit', async () => {
    const pac = await compilePac(
      'function FindProxyForURL() { var a = []; for (;;) a.push(new Array(100000).fill(1)); }',
      { source: 'hog.pac', memoryLimit: 8 * 1024 * 1024, timeoutMs: 10_000 },
    );
    try {
      const e = await wsviaRejection(pac.findProxyForUrl('http://x/', 'x'));
      assert.equal(e.code, 'CONFIG_INVALID');
    } finally {
      pac.dispose();
    }
  });
});

describe('PAC helper functions without I/O', () => {
  it('isInNet matches addresses and names through the supplied resolver only', async () => {
    const pac = await compilePac(
      `function FindProxyForURL(url, host) {
         return [isInNet(host, "10.0.0.0", "255.0.0.0"), isResolvable(host), dnsResolve(host), myIpAddress()].join(",");
       }`,
      {
        source: 'net.pac',
        host: { dnsResolve: (h) => (h === 'in.example' ? '10.9.8.7' : null), myIpAddress: () => '192.0.2.5' },
      },
    );
    try {
      assert.equal(await pac.findProxyForUrl('http://10.1.1.1/', '10.1.1.1'), 'true,false,,192.0.2.5');
      assert.equal(
        await pac.findProxyForUrl('http://in.example/', 'in.example'),
        'true,true,10.9.8.7,192.0.2.5',
      );
      assert.equal(await pac.findProxyForUrl('http://out.example/', 'out.example'), 'false,false,,192.0.2.5');
    } finally {
      pac.dispose();
    }
  });
});

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
    // The budget also bounds the next call, the first on a fresh worker: 150 ms was missed on a loaded CI machine.
    const pac = await compilePac(CORP, { source: 'corp.pac', timeoutMs: 1000 });
    try {
      const e = await wsviaRejection(pac.findProxyForUrl('wss://loop.example/', 'loop.example'));
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.equal(e.hop, 'route');
      assert.match(e.message, /corp\.pac did not finish for wss:\/\/loop\.example\/ within 1000 ms/);
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

  it('a script that allocates without bound hits the memory limit, long before its deadline', async () => {
    const scripts = {
      // Counted by QuickJS's own allocator.
      'objects.pac': 'var a = []; for (;;) a.push([1, 2, 3, 4, 5, 6, 7, 8]);',
      // Not counted by it (the WebAssembly memory grows past the limit): caught by the process watch.
      'buffers.pac': 'var a = []; for (;;) a.push(new ArrayBuffer(1000000));',
    };
    for (const [source, body] of Object.entries(scripts)) {
      const pac = await compilePac(`function FindProxyForURL() { ${body} }`, {
        source,
        memoryLimit: 8 * 1024 * 1024,
        timeoutMs: 60_000,
      });
      try {
        const e = await wsviaRejection(pac.findProxyForUrl('http://x/', 'x'));
        assert.equal(e.code, 'CONFIG_INVALID');
        assert.match(
          e.message,
          new RegExp(`${source.replace('.', '\\.')} failed for http://x/: .*out of memory`),
        );
        assert.match(e.hint ?? '', /allocates without bound/);
        // The sandbox is replaced: the next call runs in a fresh one, and fails the same way.
        assert.match((await wsviaRejection(pac.findProxyForUrl('http://x/', 'x'))).message, /out of memory/);
      } finally {
        pac.dispose();
      }
    }
  });

  it('an allocation bomb ends in CONFIG_INVALID within the budget, and a 10 ms timer keeps firing meanwhile', async () => {
    // QuickJS checks its interrupt handler only between allocations, and this loop keeps it busy in between:
    // on the event loop it stalled the process for 20 s and more.
    const pac = await compilePac(
      'function FindProxyForURL() { var a = []; for (;;) a.push(new Array(100000).fill(1)); }',
      { source: 'bomb.pac' },
    );
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 10);
    try {
      const started = performance.now();
      const e = await wsviaRejection(pac.findProxyForUrl('http://x/', 'x'));
      const elapsed = performance.now() - started;
      assert.equal(e.code, 'CONFIG_INVALID');
      // The deadline or the memory watch, whichever comes first: both are answers within the budget.
      assert.match(
        e.message,
        /bomb\.pac (did not finish for http:\/\/x\/ within 1000 ms|failed for http:\/\/x\/: .*out of memory)/,
      );
      assert.ok(elapsed < 1500, `answered after ${Math.round(elapsed)} ms`);
      const gaps = ticks.slice(1).map((t, i) => t - (ticks[i] as number));
      assert.ok(ticks.length >= 20, `${ticks.length} ticks in ${Math.round(elapsed)} ms`);
      assert.ok(Math.max(...gaps) < 250, `longest pause ${Math.round(Math.max(...gaps))} ms`);
    } finally {
      clearInterval(timer);
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

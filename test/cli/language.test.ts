/**
 * One language across every command (issue 13), probed through the real CLI: usage errors in two lines, `wsvia
 * help CMD`, the exit-code block of every `--help` from the one table, `--listen [HOST:]PORT` and `--tls-cert
 * FILE --tls-key FILE` in every server, config keys named as the flags, and the exit codes of a bridge's 401/403.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { COMMANDS } from '../../src/cli/commands.js';
import { exitCodesHelp } from '../../src/cli/output.js';
import { VERSION } from '../../src/cli/version.js';
import { EXIT_CODE_MEANINGS, EXIT_CODES } from '../../src/errors.js';
import { localhostCert } from '../helpers/certs.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/process.js';
import { startServerCli } from '../helpers/server-cli.js';
import { connectRequest, request, startTcpEcho, type TcpPeer } from '../helpers/wsvia-proxy.js';

/** The arguments each server needs besides where it listens (something to relay to). */
const SERVERS: Readonly<Record<'proxy' | 'gateway' | 'bridge' | 'echo', readonly string[]>> = {
  proxy: [],
  gateway: ['--route', '/=ws://127.0.0.1:9'],
  bridge: ['--target', '127.0.0.1:9'],
  echo: [],
};

function lines(text: string): string[] {
  return text.trimEnd().split('\n');
}

/** A usage error as curl prints one: the problem, then where to look; exit 2. */
function assertUsage(
  r: { code: number | null; stdout: string; stderr: string },
  command: string,
  problem: string,
): void {
  assert.equal(r.code, EXIT_CODES.usage, r.stderr);
  assert.deepEqual(lines(r.stderr), [`wsvia ${command}: ${problem}`, `try 'wsvia ${command} --help'`]);
  assert.equal(r.stdout, '');
}

describe('usage errors: two lines in every command, no parser wording, no help dump', () => {
  for (const command of Object.keys(COMMANDS)) {
    it(`wsvia ${command} --bogus: "unknown option --bogus", "try 'wsvia ${command} --help'", exit 2`, async () => {
      assertUsage(await runCli([command, '--bogus']), command, 'unknown option --bogus');
    });
  }

  it('a flag without its value, a boolean given a value, a stray argument: said in our words', async () => {
    assertUsage(await runCli(['proxy', '--listen']), 'proxy', 'option --listen needs a value');
    assertUsage(await runCli(['echo', '--mirror=yes']), 'echo', 'option --mirror takes no value');
    assertUsage(await runCli(['gateway', 'extra']), 'gateway', 'unexpected argument extra');
    const r = await runCli(['proxy', '--max-tunnels', '-3']);
    assert.doesNotMatch(r.stderr, /To specify|positional|ERR_PARSE_ARGS/);
    assert.equal(r.code, 2);
  });

  it('a port out of range names the range, in every server', async () => {
    for (const command of Object.keys(SERVERS)) {
      const r = await runCli([
        command,
        '--listen',
        '127.0.0.1:99999',
        ...SERVERS[command as keyof typeof SERVERS],
      ]);
      assertUsage(r, command, '--listen: port 99999 is out of range 0-65535');
    }
    assertUsage(
      await runCli(['echo', '--port', '70000']),
      'echo',
      '--port: port 70000 is out of range 0-65535',
    );
  });

  it('an unknown command or top-level option is two lines too', async () => {
    const r = await runCli(['bogus']);
    assert.equal(r.code, 2);
    assert.deepEqual(lines(r.stderr), ['wsvia: unknown command "bogus"', "try 'wsvia --help'"]);
    const o = await runCli(['--bogus']);
    assert.deepEqual(lines(o.stderr), ['wsvia: unknown option --bogus', "try 'wsvia --help'"]);
  });
});

describe('help and version', () => {
  const block = (codes: readonly number[]): string =>
    exitCodesHelp(codes as (keyof typeof EXIT_CODE_MEANINGS)[]);

  for (const command of Object.keys(COMMANDS)) {
    it(`wsvia help ${command} prints what wsvia ${command} --help prints, ending with the exit codes from the table`, async () => {
      const viaHelp = await runCli(['help', command]);
      const direct = await runCli([command, '--help']);
      assert.equal(viaHelp.code, 0);
      assert.equal(viaHelp.stdout, direct.stdout);
      const i = direct.stdout.lastIndexOf('exit codes:\n');
      assert.ok(i > 0, `no exit codes block:\n${direct.stdout}`);
      const listed = [...direct.stdout.slice(i).matchAll(/^ {2}(\d+) {2}/gm)].map((m) => Number(m[1]));
      assert.ok(listed.length >= 2, direct.stdout.slice(i));
      assert.equal(direct.stdout.slice(i), block(listed));
    });
  }

  it('-V and --version print the version', async () => {
    for (const flag of ['-V', '--version']) {
      const r = await runCli([flag]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`^wsvia ${VERSION.replaceAll('.', '\\.')} `));
    }
  });
});

describe('--listen [HOST:]PORT and --tls-cert/--tls-key in every server', () => {
  let dir: string;
  before(() => {
    dir = tempDir();
    const { cert, key } = localhostCert();
    fs.writeFileSync(path.join(dir, 'cert.pem'), cert);
    fs.writeFileSync(path.join(dir, 'key.pem'), key);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const [command, rest] of Object.entries(SERVERS)) {
    it(`${command} --listen 0 listens on 127.0.0.1, --listen [::1]:0 on ::1`, async () => {
      for (const [listen, host] of [
        ['0', '127.0.0.1'],
        ['[::1]:0', '[::1]'],
      ] as const) {
        const s = await startServerCli(command, ['--listen', listen, ...rest]);
        try {
          assert.ok(s.url.includes(`//${host}:`), s.url);
          assert.ok(s.port > 0);
        } finally {
          await s.stop();
        }
      }
    });

    it(`${command}: a missing certificate file is one line naming the flag and the file, exit 2`, async () => {
      const missing = path.join(dir, 'missing.pem');
      const tls = command === 'gateway' ? ['--tls-listen', '0'] : [];
      const r = await runCli([
        command,
        '--listen',
        '0',
        ...rest,
        ...tls,
        '--tls-cert',
        missing,
        '--tls-key',
        path.join(dir, 'key.pem'),
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.deepEqual(lines(r.stderr), [
        `wsvia: --tls-cert ${missing}: cannot read the file (ENOENT) [CONFIG_INVALID, hop config]`,
      ]);
    });
  }

  for (const [command, rest] of Object.entries(SERVERS)) {
    it(`${command}: a certificate that is not PEM is one line naming the flags and the files, exit 2`, async () => {
      const bad = path.join(dir, 'not-pem.txt');
      fs.writeFileSync(bad, 'not a certificate\n');
      const key = path.join(dir, 'key.pem');
      const tls = command === 'gateway' ? ['--tls-listen', '0'] : [];
      const r = await runCli([
        command,
        '--listen',
        '0',
        ...rest,
        ...tls,
        '--tls-cert',
        bad,
        '--tls-key',
        key,
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(lines(r.stderr).length, 1, r.stderr);
      assert.ok(r.stderr.includes(`(--tls-cert ${bad}, --tls-key ${key}) cannot be used`), r.stderr);
    });
  }

  it('echo --tls-cert/--tls-key serves wss with that certificate (--cert/--key stay as aliases)', async () => {
    for (const [c, k] of [
      ['--tls-cert', '--tls-key'],
      ['--cert', '--key'],
    ] as const) {
      const s = await startServerCli('echo', [
        '--listen',
        '0',
        c,
        path.join(dir, 'cert.pem'),
        k,
        path.join(dir, 'key.pem'),
      ]);
      try {
        assert.match(s.url, /^wss:\/\/127\.0\.0\.1:/);
        const ws = new WebSocket(s.url, { ca: localhostCert().cert });
        const echoed = await new Promise<string>((resolve, reject) => {
          ws.on('error', reject);
          ws.on('open', () => ws.send('hi'));
          ws.on('message', (m: Buffer) => resolve(m.toString()));
        });
        assert.equal(echoed, 'hi');
        ws.close();
      } finally {
        await s.stop();
      }
    }
  });

  it('proxy and echo: --listen and --host/--port together is a usage error', async () => {
    for (const command of ['proxy', 'echo']) {
      const r = await runCli([command, '--listen', '0', '--port', '0']);
      assertUsage(r, command, '--listen says what --host and --port say: give one or the other');
    }
  });
});

describe('config files: a key is the flag name, lists are YAML lists', () => {
  let dir: string;
  let tcp: TcpPeer;
  before(async () => {
    dir = tempDir();
    tcp = await startTcpEcho();
  });
  after(async () => {
    await tcp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const file = (name: string, text: string): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };

  it('proxy: allow-ports: [PORT, 443] allows exactly those ports', async () => {
    const cfg = file('proxy.yaml', `listen: 0\nallow-private: true\nallow-ports: [${tcp.port}, 443]\n`);
    const s = await startServerCli('proxy', ['--config', cfg]);
    try {
      const ok = await request(s.port, connectRequest(`127.0.0.1:${tcp.port}`));
      assert.equal(ok.head.status, 200);
      ok.socket.destroy();
      const denied = await request(s.port, connectRequest(`127.0.0.1:${tcp.port === 1 ? 2 : 1}`));
      assert.equal(denied.head.status, 403);
      denied.socket.destroy();
    } finally {
      await s.stop();
    }
  });

  it('bridge and echo read their flags from --config too (flags given win)', async () => {
    const b = await startServerCli('bridge', [
      '--config',
      file('bridge.yaml', `listen: 127.0.0.1:1\ntarget: 127.0.0.1:${tcp.port}\n`),
      '--listen',
      '0',
    ]);
    try {
      const ws = new WebSocket(b.url);
      const echoed = await new Promise<string>((resolve, reject) => {
        ws.on('error', reject);
        ws.on('open', () => ws.send(Buffer.from('x')));
        ws.on('message', (m: Buffer) => resolve(m.toString()));
      });
      assert.equal(echoed, 'x');
      ws.close();
    } finally {
      await b.stop();
    }
    const e = await startServerCli('echo', ['--config', file('echo.yaml', 'listen: "[::1]:0"\n')]);
    try {
      assert.match(e.url, /^ws:\/\/\[::1\]:/);
    } finally {
      await e.stop();
    }
  });

  it('a flag wins over the file whichever spelling each uses (--port over listen:)', async () => {
    const cfg = file('proxy-listen.yaml', 'listen: 127.0.0.1:1\n');
    const s = await startServerCli('proxy', ['--config', cfg, '--port', '0']);
    try {
      assert.notEqual(s.port, 1);
    } finally {
      await s.stop();
    }
  });

  it('an old camelCase key is an error naming the new one, in every command', async () => {
    const cases = [
      ['proxy', 'maxTunnelsPerClient: 3\n', 'maxTunnelsPerClient: use max-tunnels-per-client'],
      ['bridge', 'target: 127.0.0.1:9\nconnectTimeout: 3\n', 'connectTimeout: use connect-timeout'],
      ['echo', 'subProtocol: x\n', 'subProtocol: use subprotocol'],
      [
        'gateway',
        'listen: 0\nroutes: [{ path: /, upstream: ws://127.0.0.1:9 }]\npingTimeout: 3\n',
        'pingTimeout: use ping-timeout',
      ],
      [
        'gateway',
        'listen: 0\nroutes: [{ path: /, upstream: ws://127.0.0.1:9 }]\nallowOrigins: [x]\n',
        'allowOrigins: use allow-origin',
      ],
      [
        'gateway',
        'listen: 0\nroutes: [{ path: /, upstream: ws://127.0.0.1:9 }]\nlimits: { maxConnections: 3 }\n',
        'limits.maxConnections: use max-connections at the top level',
      ],
      [
        'gateway',
        'routes: [{ path: /, upstream: ws://127.0.0.1:9 }]\ntls: { listen: 0 }\n',
        'tls.listen: use tls-listen at the top level',
      ],
    ] as const;
    for (const [command, text, problem] of cases) {
      const cfg = file(`${command}-old.yaml`, text);
      const r = await runCli([command, '--config', cfg]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(
        lines(r.stderr)[0],
        `wsvia: ${cfg}: ${problem} (a key is the flag's name) [CONFIG_INVALID, hop config]`,
      );
    }
  });

  it('a bad value from the file names the file and the key, not the flag', async () => {
    const cfg = file('bad.yaml', 'listen: 70000\n');
    for (const command of ['proxy', 'echo']) {
      const r = await runCli([command, '--config', cfg]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`^wsvia: ${cfg}: listen: port 70000 is out of range 0-65535 \\[CONFIG_INVALID`),
      );
    }
    const ports = await runCli(['proxy', '--config', file('ports.yaml', 'allow-ports: [443, abc]\n')]);
    assert.equal(ports.code, 2, ports.stderr);
    assert.match(ports.stderr, /ports\.yaml: allow-ports: invalid port list entry "abc"/);
    const g = await runCli([
      'gateway',
      '--config',
      file('bad-gw.yaml', 'listen: 70000\nroutes: [{ path: /, upstream: ws://127.0.0.1:9 }]\n'),
    ]);
    assert.equal(g.code, 2, g.stderr);
    assert.match(g.stderr, /bad-gw\.yaml: listen: port 70000 is out of range 0-65535/);
  });
});

describe("exit codes of a bridge's refusals: 401 is authentication (4), 403 a refusal (3)", () => {
  let tcp: TcpPeer;
  let bridge: Awaited<ReturnType<typeof startServerCli>>;
  before(async () => {
    tcp = await startTcpEcho();
    bridge = await startServerCli('bridge', [
      '--listen',
      '0',
      '--allow-target',
      `127.0.0.1:${tcp.port}`,
      '--allow-private',
      '--auth',
      'u:p',
    ]);
  });
  after(async () => {
    await bridge.stop();
    await tcp.close();
  });

  it('tunnel --stdio without credentials: exit 4', async () => {
    const r = await runCli(['tunnel', '--stdio', bridge.url, '--target', `127.0.0.1:${tcp.port}`]);
    assert.equal(r.code, EXIT_CODES.proxyAuth, r.stderr);
    assert.match(r.stderr, /401/);
  });

  it('tunnel --stdio to a target the bridge does not allow: exit 3', async () => {
    const url = bridge.url.replace('ws://', 'ws://u:p@');
    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const r = await runCli(['tunnel', '--stdio', url, '--target', `127.0.0.1:${closed}`]);
    assert.equal(r.code, EXIT_CODES.proxyRefused, r.stderr);
    assert.match(r.stderr, /403/);
  });

  it('doctor exits as connect would: 401 exits 4', async () => {
    const r = await runCli(['doctor', `${bridge.url}?target=127.0.0.1:${tcp.port}`], { timeoutMs: 30_000 });
    assert.equal(r.code, EXIT_CODES.proxyAuth, r.stdout + r.stderr);
  });

  it('tunnel -L on a port in use exits 1, as every server does', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      const r = await runCli(['tunnel', '-L', `127.0.0.1:${port}`, bridge.url]);
      assert.equal(r.code, EXIT_CODES.failure, r.stderr);
      assert.deepEqual(lines(r.stderr), ['wsvia: cannot listen for -L (EADDRINUSE): choose another port']);
    } finally {
      busy.close();
    }
  });

  it('connect gets the same codes from the same table: 401 exits 4', async () => {
    const r = await runCli(['connect', `${bridge.url}?target=127.0.0.1:${tcp.port}`, '--send', 'x']);
    assert.equal(r.code, EXIT_CODES.proxyAuth, r.stderr);
  });
});

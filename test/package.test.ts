/**
 * The package as users get it. The first test imports the built checkout; the rest pack the tarball `npm publish`
 * would upload, install it with `--omit=dev` into an empty directory and use it there as a user would: the `wsvia`
 * bin through npx, an ESM import, a `require`, and a strict TypeScript compile against the published types.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { tempDir } from './helpers/process.js';

const run = promisify(execFile);
const ROOT = path.resolve('.');
const NPM_QUIET = ['--no-audit', '--no-fund', '--loglevel=error'];

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

/** A consumer with every strict flag this project uses, and the library's .d.ts checked too (no skipLibCheck). */
const CONSUMER_TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    skipLibCheck: false,
    noEmit: true,
  },
  files: ['consumer.mts', 'consumer.cts'],
};

const CONSUMER_MTS = `import { connect, WsviaError, chooseRoute, type ConnectOptions, type RouteDecision } from 'wsvia';
const options: ConnectOptions = { proxy: 'http://127.0.0.1:3128', timeouts: { tunnel: 5000 } };
export async function open(url: string): Promise<string> {
  try {
    const ws = await connect(url, options);
    ws.close();
    return ws.protocol;
  } catch (e) {
    if (e instanceof WsviaError) return e.code;
    throw e;
  }
}
export const decision: RouteDecision = chooseRoute({ secure: true, host: 'example.test', port: 443 }, { proxy: 'http://127.0.0.1:3128' });
`;

const CONSUMER_CTS = `import wsvia = require('wsvia');
export const isError = (e: unknown): boolean => e instanceof wsvia.WsviaError;
`;

interface PackedFile {
  readonly path: string;
}

/** Relative link targets in a Markdown file (`[text](target)`), without anchors; absolute URLs are left out. */
function relativeLinks(markdown: string): string[] {
  return [...markdown.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => (m[1] as string).split('#')[0] as string)
    .filter((t) => t !== '' && !/^[a-z]+:/i.test(t));
}

describe(
  'the packed tarball, installed with --omit=dev into an empty directory',
  { timeout: 240_000 },
  () => {
    let files: string[] = [];
    let app = '';
    let out = '';
    const inApp = (cmd: string, args: string[]) =>
      run(cmd, args, {
        cwd: app,
        timeout: 60_000,
        env: { ...process.env, npm_config_update_notifier: 'false' },
      });

    before(async () => {
      out = tempDir('wsvia-pack-');
      // The tarball of what is built now: `prepack` (the build) is what `npm publish` adds, not this test.
      const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', out], {
        cwd: ROOT,
      });
      const [packed] = JSON.parse(stdout) as { filename: string; files: PackedFile[] }[];
      assert.ok(packed);
      files = packed.files.map((f) => f.path);
      app = path.join(out, 'app');
      fs.mkdirSync(app);
      fs.writeFileSync(path.join(app, 'package.json'), '{ "private": true }\n');
      // From the local cache when it has everything (CI's `npm ci` filled it); the registry otherwise.
      await inApp('npm', [
        'install',
        path.join(out, packed.filename),
        '--omit=dev',
        '--prefer-offline',
        ...NPM_QUIET,
      ]);
    });

    after(() => fs.rmSync(out, { recursive: true, force: true }));

    test('holds the built library, the bin, README, LICENSE and docs, and no tests, sources or maps', () => {
      for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/src/index.js', 'dist/src/index.d.ts']) {
        assert.ok(files.includes(f), `the tarball lacks ${f}`);
      }
      const unexpected = files.filter(
        (f) =>
          !/^dist\/src\/.+\.(js|d\.ts)$/.test(f) &&
          !/^docs\/[^/]+\.md$/.test(f) &&
          !/^prebuilds\/[a-z0-9]+-[a-z0-9]+\/wsvia_splice\.napi\.glibc\.node$/.test(f) &&
          ![
            'package.json',
            'README.md',
            'LICENSE',
            'native/splice/binding.gyp',
            'native/splice/splice.c',
            'native/splice/dial.c',
            'native/splice/dial.h',
            'scripts/install-native.mjs',
          ].includes(f),
      );
      assert.deepEqual(unexpected, []);
      assert.match(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8'), /^MIT License/);
    });

    test(
      'on linux-x64 the installed package loads its prebuilt splice relay, built nothing and needs no compiler',
      { skip: process.platform === 'linux' && process.arch === 'x64' ? false : 'no prebuild here' },
      async () => {
        assert.ok(!fs.existsSync(path.join(app, 'node_modules/wsvia/native/splice/build')), 'nothing built');
        const { stdout } = await inApp(process.execPath, [
          '--input-type=module',
          '-e',
          "const m = await import('./node_modules/wsvia/dist/src/serve/splice-relay.js'); console.log(JSON.stringify(m.spliceSupport()));",
        ]);
        assert.deepEqual(JSON.parse(stdout), {
          available: true,
          from: 'prebuilds/linux-x64/wsvia_splice.napi.glibc.node',
        });
      },
    );

    test('every relative link in the packed README and docs names a file in the tarball', () => {
      const broken: string[] = [];
      for (const doc of files.filter((f) => f.endsWith('.md'))) {
        const text = fs.readFileSync(path.join(app, 'node_modules/wsvia', doc), 'utf8');
        for (const target of relativeLinks(text)) {
          const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(doc), target));
          if (!files.includes(resolved)) broken.push(`${doc} -> ${target}`);
        }
      }
      assert.deepEqual(broken, []);
    });

    test('npx wsvia --version prints the package version', async () => {
      const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
        version: string;
      };
      const { stdout } = await inApp('npx', ['--no', '--', 'wsvia', '--version']);
      assert.match(stdout, new RegExp(`^wsvia ${version.replaceAll('.', '\\.')}\\b`));
    });

    test('npx wsvia demo runs the whole path on loopback and exits 0', async () => {
      const { stdout, stderr } = await inApp('npx', ['--no', '--', 'wsvia', 'demo']);
      assert.match(stdout, /hello through wsvia/);
      assert.match(stderr, /HTTP\/1\.1 101 Switching Protocols/);
    });

    test('an ESM import and a require of wsvia give the same API', async () => {
      const probe = (code: string) =>
        inApp(process.execPath, ['--input-type=' + code, '-e', PROBES[code] as string]);
      const PROBES: Record<string, string> = {
        module: "import * as w from 'wsvia'; console.log(Object.keys(w).sort().join(','))",
        commonjs:
          "const w = require('wsvia'); console.log(Object.keys(w).filter((k) => k !== '__esModule' && k !== 'module.exports').sort().join(','))",
      };
      const esm = (await probe('module')).stdout.trim();
      const cjs = (await probe('commonjs')).stdout.trim();
      assert.ok(esm.split(',').includes('connect'), esm);
      assert.equal(cjs, esm);
    });

    test('a strict TypeScript consumer (ESM and CJS) compiles against the published types', async () => {
      fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify(CONSUMER_TSCONFIG, null, 2));
      fs.writeFileSync(path.join(app, 'consumer.mts'), CONSUMER_MTS);
      fs.writeFileSync(path.join(app, 'consumer.cts'), CONSUMER_CTS);
      const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
      const r = await inApp(process.execPath, [tsc, '-p', 'tsconfig.json']).catch(
        (e: { stdout?: string; message: string }) => assert.fail(e.stdout ?? e.message),
      );
      assert.equal(r.stdout, '');
    });
  },
);

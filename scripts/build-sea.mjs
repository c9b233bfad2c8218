#!/usr/bin/env node
// `npm run sea`: builds dist/sea/wsvia, a Node.js single executable application (SEA) holding the whole CLI, so
// it runs where neither Node.js nor node_modules exist. Steps: esbuild bundles the built CLI (dist/src/cli/main.js)
// and its dependencies into one CommonJS file (Node 20's SEA runs CommonJS); Node writes the SEA blob with
// quickjs-wasi's WebAssembly as an asset; a copy of this node binary gets the blob injected with postject.
// `--out DIR` writes elsewhere (the test builds into a temporary directory).
//
// Left out of the bundle, as a user without a compiler would lack them too: the native addons bufferutil and
// utf-8-validate (ws falls back to JavaScript) and kerberos (the Negotiate scheme reports it missing); undici,
// an optional peer that only the library's undici adapters use.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import { inject } from 'postject';

const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const ENTRY = 'dist/src/cli/main.js';
const EXTERNAL = ['bufferutil', 'utf-8-validate', 'kerberos', 'undici'];
const QUICKJS_WASM = 'node_modules/quickjs-wasi/quickjs.wasm';
// quickjs-wasi reads its WebAssembly from beside its own file; inside the executable it is the SEA asset instead.
const QUICKJS_READ = "await readFile(new URL('../quickjs.wasm', import.meta.url))";
const QUICKJS_ASSET = "require('node:sea').getAsset('quickjs.wasm')";

const { values } = parseArgs({ options: { out: { type: 'string', default: 'dist/sea' } } });
const out = path.resolve(values.out);
if (!fs.existsSync(ENTRY)) fail(`${ENTRY} is missing: run \`npm run build\` first`);
fs.mkdirSync(out, { recursive: true });

/** Replaces quickjs-wasi's file read by the asset read, and fails the build if the code it expects moved. */
const quickjsFromAsset = {
  name: 'quickjs-wasm-from-sea-asset',
  setup(build) {
    build.onLoad({ filter: /quickjs-wasi[\\/]dist[\\/]index\.js$/ }, (args) => {
      const code = fs.readFileSync(args.path, 'utf8');
      if (!code.includes(QUICKJS_READ))
        fail(`${args.path} no longer reads its wasm as expected: update build-sea`);
      return { contents: code.replace(QUICKJS_READ, QUICKJS_ASSET), loader: 'js' };
    });
  },
};

const bundle = path.join(out, 'wsvia.cjs');
await esbuild.build({
  entryPoints: [ENTRY],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: EXTERNAL,
  // ws tries require('bufferutil') when these are unset, and a single executable warns on any non-builtin require.
  define: { 'process.env.WS_NO_BUFFER_UTIL': '"1"', 'process.env.WS_NO_UTF_8_VALIDATE': '"1"' },
  plugins: [quickjsFromAsset],
  // import.meta.url is read only outside a single executable (cli/self.ts); the bundle never runs there.
  logOverride: { 'empty-import-meta': 'silent' },
  logLevel: 'warning',
});

// Worker threads run from files beside their callers; inside the executable each is a bundle of its own, stored
// as an asset that src/worker-script.ts runs as the worker's source.
const WORKERS = {
  'pac-worker.js': 'dist/src/route/pac-worker.js',
  'bcrypt-worker.js': 'dist/src/auth/bcrypt-worker.js',
};
const workerAssets = {};
for (const [name, entry] of Object.entries(WORKERS)) {
  const outfile = path.join(out, name.replace(/\.js$/, '.cjs'));
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    plugins: [quickjsFromAsset],
    logLevel: 'warning',
  });
  workerAssets[name] = outfile;
}

const blob = path.join(out, 'wsvia.blob');
const config = path.join(out, 'sea-config.json');
fs.writeFileSync(
  config,
  JSON.stringify({
    main: bundle,
    output: blob,
    disableExperimentalSEAWarning: true,
    assets: { 'quickjs.wasm': path.resolve(QUICKJS_WASM), ...workerAssets },
  }),
);
execFileSync(process.execPath, ['--experimental-sea-config', config], {
  stdio: ['ignore', 'ignore', 'inherit'],
});

const exe = path.join(out, 'wsvia');
fs.rmSync(exe, { force: true });
fs.copyFileSync(process.execPath, exe);
fs.chmodSync(exe, 0o755);
await inject(exe, 'NODE_SEA_BLOB', fs.readFileSync(blob), { sentinelFuse: SEA_FUSE });
for (const f of [blob, config, bundle]) fs.rmSync(f);
console.log(
  `${path.relative(process.cwd(), exe)}: ${(fs.statSync(exe).size / 2 ** 20).toFixed(0)} MiB, Node.js ${process.version}`,
);

function fail(message) {
  console.error(`build-sea: ${message}`);
  process.exit(1);
}

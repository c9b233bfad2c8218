#!/usr/bin/env node
// Builds the native splice relay (native/splice) and copies it to prebuilds/<platform>-<arch>/, where
// node-gyp-build finds it in the published package. N-API (NAPI_VERSION in binding.gyp), so one binary serves
// every Node version from 20 on; tagged glibc so a musl system builds its own at install (install-native.mjs).
//   npm run native:prebuild   (Node's installed headers are used when present, else node-gyp downloads them)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'native/splice');
const gyp =
  process.env.npm_config_node_gyp ??
  path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
const prefix = path.resolve(path.dirname(process.execPath), '..');
const headers = fs.existsSync(path.join(prefix, 'include/node/node_api.h')) ? [`--nodedir=${prefix}`] : [];
const extra = [...headers, ...process.argv.slice(2)];
const r = spawnSync(process.execPath, [gyp, 'rebuild', '--directory', dir, ...extra], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
const built = path.join(dir, 'build/Release/wsvia_splice.node');
const outDir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(outDir, { recursive: true });
const out = path.join(outDir, 'wsvia_splice.napi.glibc.node');
fs.copyFileSync(built, out);
spawnSync('strip', ['--strip-unneeded', out], { stdio: 'inherit' });
// The copy must load: a binary that does not is worse than none.
createRequire(import.meta.url)(out);
process.stdout.write(`${path.relative(root, out)} (${fs.statSync(out).size} bytes)\n`);

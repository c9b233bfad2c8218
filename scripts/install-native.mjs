#!/usr/bin/env node
// `npm install` hook: the native splice relay (native/splice) is optional. Nothing to do where a prebuilt binary
// matches this platform (prebuilds/, found by node-gyp-build) or where splice(2) does not exist (not Linux). On
// another Linux (an architecture without a prebuild, musl) it is built from source when a compiler is there.
// This script never fails the install: without the addon, wsvia relays in JavaScript and says so at startup.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const say = (text) => process.stderr.write(`wsvia: ${text}\n`);

function prebuildMatches() {
  try {
    const require = createRequire(import.meta.url);
    // Loaded, not only found: a binary built against a newer glibc than this system's does not load.
    require(require('node-gyp-build').resolve(root));
    return true;
  } catch {
    return false;
  }
}

function hasCompiler() {
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean)) {
    const r = spawnSync(cc, ['--version'], { stdio: 'ignore' });
    if (r.status === 0) return true;
  }
  return false;
}

function main() {
  if (process.platform !== 'linux') return;
  if (!fs.existsSync(path.join(root, 'native/splice/binding.gyp'))) return;
  if (prebuildMatches()) return;
  // npm tells its scripts where its own node-gyp is.
  const gyp = process.env.npm_config_node_gyp;
  if (!gyp || !fs.existsSync(gyp) || !hasCompiler()) {
    say('no prebuilt splice relay for this platform and no compiler: tunnels relay in JavaScript');
    return;
  }
  const args = [gyp, 'rebuild', '--directory', path.join(root, 'native/splice')];
  // Node's own headers where its install has them (distribution packages, official tarballs): no download.
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (fs.existsSync(path.join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);
  const r = spawnSync(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status !== 0)
    say(
      `the splice relay did not build (${(r.stderr ?? '').trim().split('\n').pop()}): tunnels relay in JavaScript`,
    );
}

try {
  main();
} catch (e) {
  say(
    `the splice relay was not set up (${e instanceof Error ? e.message : String(e)}): tunnels relay in JavaScript`,
  );
}
process.exitCode = 0;

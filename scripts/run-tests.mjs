#!/usr/bin/env node
// Runs every compiled test file under dist/test with node's own test runner. Node 20's `--test` does not expand
// globs, so the files are listed here. `npm test -- PATTERN` runs only the files whose path contains PATTERN.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve('dist/test');
if (!fs.existsSync(root)) {
  console.error('run-tests: dist/test is missing: run `npm run build` first');
  process.exit(1);
}
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const files = fs
  .readdirSync(root, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)))
  .sort()
  .map((f) => path.join(root, f));
if (files.length === 0) {
  console.error(`run-tests: no test files match ${filters.join(' ')}`);
  process.exit(1);
}
// A test that waits forever fails after 10 minutes, naming itself, instead of stalling the run until CI's limit
// (the longest file takes under a minute; a hang in CI once held a whole run).
const TIMEOUT_MS = 600_000;
const args = [
  '--test',
  '--test-concurrency=2',
  `--test-timeout=${TIMEOUT_MS}`,
  '--enable-source-maps',
  ...files,
];
const child = spawn(process.execPath, args, { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

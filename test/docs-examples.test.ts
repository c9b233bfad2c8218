/**
 * The README's and docs' runnable examples ("```sh runnable" blocks) run as written against loopback, with `wsvia`
 * on PATH as the built CLI, and print what the docs show ("```text output"), so the docs cannot drift from the code.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { WSVIA } from './helpers/cli.js';
import {
  extractExamples,
  listeningPort,
  matchesShape,
  portsIn,
  rewritePorts,
  type DocExample,
} from './helpers/doc-examples.js';
import { until } from './helpers/eventually.js';
import { acceptsConnection, freePort, tempDir } from './helpers/process.js';

const bin = tempDir('wsvia-docs-bin-');
fs.writeFileSync(path.join(bin, 'wsvia'), `#!/bin/sh\nexec "${process.execPath}" "${WSVIA}" "$@"\n`, {
  mode: 0o755,
});

function environment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
  for (const k of Object.keys(env)) if (/_proxy$/i.test(k)) delete env[k];
  return env;
}

/** Runs one foreground command line with bash; resolves with its stdout, rejects on a non-zero exit or a hang. */
function run(command: string, cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', command], { cwd, env: environment() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else
        reject(
          new Error(`\`${command}\` ended with ${code ?? signal}\nstdout: ${stdout}\nstderr: ${stderr}`),
        );
    });
  });
}

class Servers {
  readonly #children: ChildProcess[] = [];

  async start(command: string, cwd: string): Promise<void> {
    const child = spawn('bash', ['-c', `exec ${command}`], {
      cwd,
      env: environment(),
      detached: true,
      stdio: 'ignore',
    });
    this.#children.push(child);
    const port = listeningPort(command);
    if (port === undefined) throw new Error(`a server line names no --port/--listen to wait for: ${command}`);
    await until(`\`${command}\` accepts connections`, () => acceptsConnection(port), 15_000);
  }

  stop(): void {
    for (const c of this.#children)
      if (c.exitCode === null && c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
  }
}

async function runExample(example: DocExample): Promise<string[]> {
  const map = new Map<number, number>();
  for (const p of portsIn(example.commands)) map.set(p, await freePort());
  const cwd = tempDir('wsvia-docs-run-');
  const servers = new Servers();
  let out = '';
  try {
    for (const command of rewritePorts(example.commands, map)) {
      if (command.endsWith('&')) await servers.start(command.slice(0, -1).trim(), cwd);
      else out += await run(command, cwd);
    }
  } finally {
    servers.stop();
  }
  return out.split('\n').filter((l, i, all) => i < all.length - 1 || l !== '');
}

const files = [
  'README.md',
  ...fs
    .readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const examples = files.flatMap((f) => extractExamples(fs.readFileSync(f, 'utf8'), f));

describe('the docs’ runnable examples', () => {
  after(() => fs.rmSync(bin, { recursive: true, force: true }));

  it('there are runnable examples in the README and in the docs of every server', () => {
    const covered = new Set(examples.map((e) => e.file));
    for (const f of ['README.md', 'docs/proxy.md', 'docs/bridge.md', 'docs/gateway.md'])
      assert.ok(covered.has(f), `${f} has no "sh runnable" block`);
  });

  for (const example of examples)
    it(`${example.file}:${example.line} runs as written${example.expected ? ' and prints what the docs show' : ''}`, async () => {
      const actual = await runExample(example);
      if (example.expected)
        assert.ok(
          matchesShape(example.expected, actual),
          `expected the shape\n${example.expected.join('\n')}\ngot\n${actual.join('\n')}`,
        );
    });
});

describe('reading runnable examples', () => {
  const md = [
    'text',
    '```sh runnable',
    'wsvia echo --port 8765 &   # a server',
    '# a comment line',
    'wsvia connect ws://127.0.0.1:8765/ --send hi --expect 1',
    '```',
    '',
    '```text output',
    'hi',
    '```',
    '```sh',
    'not runnable',
    '```',
  ].join('\n');

  it('takes the commands without comments, the output block after it, and skips plain sh blocks', () => {
    const [only, ...rest] = extractExamples(md, 'x.md');
    assert.equal(rest.length, 0);
    assert.deepEqual(only, {
      file: 'x.md',
      line: 2,
      commands: ['wsvia echo --port 8765 &', 'wsvia connect ws://127.0.0.1:8765/ --send hi --expect 1'],
      expected: ['hi'],
    });
  });

  it('an unclosed runnable block is an error naming its line', () => {
    assert.throws(() => extractExamples('```sh runnable\nwsvia echo', 'y.md'), /y\.md:1/);
  });

  it('rewrites every whole-word use of a port the example connects to, and nothing else', () => {
    const commands = [
      'wsvia proxy --allow-ports 8765 --max-tunnels 87650',
      'wsvia connect ws://127.0.0.1:8765/',
    ];
    assert.deepEqual(portsIn(commands), [8765]);
    assert.deepEqual(rewritePorts(commands, new Map([[8765, 40001]])), [
      'wsvia proxy --allow-ports 40001 --max-tunnels 87650',
      'wsvia connect ws://127.0.0.1:40001/',
    ]);
  });

  it('a shape matches line by line, "..." standing for any text; a missing, extra or different line does not', () => {
    assert.ok(matchesShape(['HTTP/1.1 426 ...', 'hi'], ['HTTP/1.1 426 Upgrade Required', 'hi']));
    assert.ok(!matchesShape(['hi'], ['hi', 'there']));
    assert.ok(!matchesShape(['hi', 'there'], ['hi']));
    assert.ok(!matchesShape(['hello'], ['hellox']));
    assert.ok(!matchesShape(['a.c'], ['abc']), '"." is literal');
  });

  it('a server line names the port to wait for', () => {
    assert.equal(listeningPort('wsvia echo --port 8765'), 8765);
    assert.equal(listeningPort('wsvia bridge --listen 127.0.0.1:6080 --target 127.0.0.1:1'), 6080);
    assert.equal(listeningPort('wsvia gateway --listen=9000'), 9000);
    assert.equal(listeningPort('wsvia echo'), undefined);
  });
});

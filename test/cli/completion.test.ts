/** `wsvia completion bash|zsh|fish`: every command's every flag, from the tables its parser uses; bash runs it. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { COMMANDS } from '../../src/cli/commands.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/process.js';

const SHELLS = ['bash', 'zsh', 'fish'] as const;

/** The lines of a script that belong to one command, as each generator lays them out. */
function linesFor(shell: (typeof SHELLS)[number], script: string, command: string): string {
  const lines = script.split('\n');
  if (shell === 'fish')
    return lines.filter((l) => l.includes(`'__fish_seen_subcommand_from ${command}'`)).join('\n');
  return lines.filter((l) => l.startsWith(`    ${command}) `)).join('\n');
}

/** Whether `flag` (e.g. `--max-tunnels`) is offered in a command's lines, as a whole word. */
function offers(shell: (typeof SHELLS)[number], lines: string, flag: string): boolean {
  const name = flag.slice(2).replace(/[-]/g, '\\-');
  if (shell === 'fish') return new RegExp(`-l ${name}( |$)`, 'm').test(lines);
  if (shell === 'zsh') return new RegExp(`'\\*--${name}[:']`).test(lines);
  return new RegExp(`[' ]--${name}[ ']`).test(lines);
}

describe('wsvia completion', () => {
  const scripts = new Map<string, string>();
  let dir = '';

  before(async () => {
    dir = tempDir('wsvia-completion-');
    for (const shell of SHELLS) {
      const r = await runCli(['completion', shell]);
      assert.equal(r.code, 0, r.stderr);
      scripts.set(shell, r.stdout);
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('each script offers every command, and every long flag of each command parser table', async () => {
    const missing: string[] = [];
    for (const [name, command] of Object.entries(COMMANDS)) {
      const { OPTIONS } = await command.load();
      assert.ok(Object.keys(OPTIONS).length > 0, `${name} has an options table`);
      for (const shell of SHELLS) {
        const script = scripts.get(shell) as string;
        if (!new RegExp(`\\b${name}\\b`).test(script)) missing.push(`${shell}: command ${name}`);
        const lines = linesFor(shell, script, name);
        for (const flag of Object.keys(OPTIONS)) {
          if (!offers(shell, lines, `--${flag}`)) missing.push(`${shell}: ${name} --${flag}`);
        }
      }
    }
    assert.deepEqual(missing, []);
  });

  test('the bash script parses (bash -n)', () => {
    const file = path.join(dir, 'wsvia.bash');
    fs.writeFileSync(file, scripts.get('bash') as string);
    const r = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  test('in bash, complete registers it and it completes "wsvia pro" and "wsvia proxy --max-t"', () => {
    const file = path.join(dir, 'wsvia.bash');
    fs.writeFileSync(file, scripts.get('bash') as string);
    const complete = (words: string[]): string => {
      const script = [
        `source ${JSON.stringify(file)}`,
        'complete -p wsvia',
        `COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(' ')})`,
        `COMP_CWORD=${words.length - 1}`,
        `COMP_LINE=${JSON.stringify(words.join(' '))}`,
        'COMP_POINT=${#COMP_LINE}',
        '_wsvia wsvia "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
        'printf "%s\\n" "${COMPREPLY[@]}"',
      ].join('\n');
      const r = spawnSync('bash', ['--noprofile', '--norc', '-c', script], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    const [registration, ...pro] = complete(['wsvia', 'pro']).trim().split('\n');
    assert.match(registration as string, /complete .*-F _wsvia wsvia$/);
    assert.deepEqual(pro, ['proxy']);
    const [, ...maxT] = complete(['wsvia', 'proxy', '--max-t']).trim().split('\n');
    assert.deepEqual(maxT, ['--max-tunnels', '--max-tunnels-per-client']);
    const [, ...shells] = complete(['wsvia', 'completion', '']).trim().split('\n');
    assert.deepEqual(shells, ['bash', 'zsh', 'fish']);
  });

  test('the zsh script parses (zsh -n) and compinit registers _wsvia for wsvia', () => {
    const file = path.join(dir, '_wsvia');
    fs.writeFileSync(file, scripts.get('zsh') as string);
    assert.equal(spawnSync('zsh', ['-n', file], { encoding: 'utf8' }).status, 0);
    const script = `autoload -U compinit; compinit -u -D; source ${JSON.stringify(file)}; print -r -- $_comps[wsvia]`;
    const r = spawnSync('zsh', ['-f', '-c', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '_wsvia');
  });

  test('in fish, complete -C completes "wsvia pro", "wsvia proxy --max-t" and tunnel -L/-R', () => {
    const file = path.join(dir, 'wsvia.fish');
    fs.writeFileSync(file, scripts.get('fish') as string);
    assert.equal(spawnSync('fish', ['-n', file], { encoding: 'utf8' }).status, 0);
    const complete = (line: string): string[] => {
      const r = spawnSync(
        'fish',
        ['--no-config', '-c', `source ${JSON.stringify(file)}; complete -C ${JSON.stringify(line)}`],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(r.status, 0, r.stderr);
      return r.stdout
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split('\t')[0] as string);
    };
    assert.deepEqual(complete('wsvia pro'), ['proxy']);
    assert.deepEqual(complete('wsvia proxy --max-t'), ['--max-tunnels', '--max-tunnels-per-client']);
    const tunnel = complete('wsvia tunnel -');
    assert.ok(tunnel.includes('-L') && tunnel.includes('-R') && tunnel.includes('--stdio'), tunnel.join(' '));
  });

  test('an unknown shell is a usage error (exit 2)', async () => {
    const r = await runCli(['completion', 'tcsh']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /expected one of bash, zsh, fish, got tcsh/);
  });
});

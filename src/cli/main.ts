#!/usr/bin/env node
/**
 * `wsvia COMMAND ...`: dispatches to one file per command (the table is in commands.ts).
 */
import cluster from 'node:cluster';
import { isSea } from 'node:sea';
import { EXIT_CODES } from '../errors.js';
import { COMMANDS } from './commands.js';
import { ALL_EXIT_CODES, exitCodesHelp } from './output.js';
import { versionText } from './version.js';

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: wsvia COMMAND [options]\n       wsvia help COMMAND\n       wsvia --version\n\ncommands:\n${lines.join('\n')}\n\n'wsvia COMMAND --help' (or 'wsvia help COMMAND') for a command's options.\n\n${exitCodesHelp(ALL_EXIT_CODES)}`;
}

function unknownCommand(name: string): number {
  process.stderr.write(`wsvia: unknown command "${name}"\ntry 'wsvia --help'\n`);
  return EXIT_CODES.usage;
}

/**
 * The arguments after `wsvia`. A worker of `--workers N` is started by node:cluster as `EXEC [execArgv] MAIN ARGS`;
 * a single executable parses no Node.js options (all start with '-') and its MAIN is the executable itself, so both
 * arrive as arguments: they are dropped here (V8 flags given that way do not apply in a single executable).
 */
function commandLine(): string[] {
  const argv = process.argv.slice(2);
  if (!isSea() || !cluster.isWorker) return argv;
  const main = argv.findIndex((a) => !a.startsWith('-'));
  return main === -1 ? argv : argv.slice(main + 1);
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'help' && rest.length > 0) {
    // `wsvia help CMD` is `wsvia CMD --help`.
    const [topic, ...extra] = rest as [string, ...string[]];
    const command = COMMANDS[topic];
    if (!command) return unknownCommand(topic);
    if (extra.length > 0) {
      process.stderr.write(`wsvia help: unexpected argument ${extra[0]}\ntry 'wsvia --help'\n`);
      return EXIT_CODES.usage;
    }
    return (await command.load()).run(['--help']);
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name === undefined ? EXIT_CODES.usage : EXIT_CODES.ok;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(versionText());
    return EXIT_CODES.ok;
  }
  if (name.startsWith('-')) {
    process.stderr.write(`wsvia: unknown option ${name}\ntry 'wsvia --help'\n`);
    return EXIT_CODES.usage;
  }
  const command = COMMANDS[name];
  if (!command) return unknownCommand(name);
  return (await command.load()).run(rest);
}

main(commandLine()).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `wsvia: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = EXIT_CODES.failure;
  },
);

#!/usr/bin/env node
/**
 * `wsvia COMMAND ...`: dispatches to one file per command. Each command module exports
 * `run(argv): Promise<number>` (the exit code) and a `summary` line for this help.
 */
import { EXIT_CODES } from '../errors.js';

interface CommandModule {
  run(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  connect: {
    summary: 'open a WebSocket, through proxies, and talk to it',
    load: () => import('./connect.js'),
  },
  proxy: {
    summary: 'a forward proxy (CONNECT and absolute-form), safe to expose',
    load: () => import('./proxy.js'),
  },
  bridge: {
    summary: 'WebSocket -> TCP bridge, websockify-compatible (targets, tokens, reverse tunnels)',
    load: () => import('./bridge.js'),
  },
  tunnel: {
    summary: 'TCP -> WebSocket through any proxy: -L, -R, --stdio (to wsvia bridge or websockify)',
    load: () => import('./tunnel.js'),
  },
  doctor: {
    summary: 'explain, hop by hop, why a WebSocket fails or drops on this network',
    load: () => import('./doctor.js'),
  },
  route: {
    summary: 'print the route (proxy, chain, PAC entries) wsvia would take to a URL, and why',
    load: () => import('./route.js'),
  },
  gateway: {
    summary: 'a WebSocket reverse proxy that never drops a healthy connection',
    load: () => import('./gateway.js'),
  },
  echo: { summary: 'a WebSocket echo server for tests and demos', load: () => import('./echo.js') },
  demo: {
    summary: 'the whole path on loopback, with a trace (what `npm start` runs)',
    load: () => import('./demo.js'),
  },
};

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: wsvia COMMAND [options]\n\ncommands:\n${lines.join('\n')}\n\n'wsvia COMMAND --help' for a command's options.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name === undefined ? EXIT_CODES.usage : EXIT_CODES.ok;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write('wsvia 0.1.0\n');
    return EXIT_CODES.ok;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`wsvia: unknown command "${name}"\n\n${help()}`);
    return EXIT_CODES.usage;
  }
  return (await command.load()).run(rest);
}

main(process.argv.slice(2)).then(
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

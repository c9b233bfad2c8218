/**
 * The `wsvia` commands, in the order `wsvia --help` lists them. Each command module exports `run(argv)` (the exit
 * code) and `OPTIONS`, the util.parseArgs table its parser uses, from which shell completion is generated.
 */

/** A flag as util.parseArgs declares it. */
export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
}

export interface CommandModule {
  run(argv: string[]): Promise<number>;
  /** The long flags (util.parseArgs' table). */
  readonly OPTIONS: Readonly<Record<string, FlagSpec>>;
  /** Flags with no long name, each taking a value (`-L` of `wsvia tunnel`). */
  readonly SHORT_ONLY_OPTIONS?: readonly string[];
  /** Words the command takes as its first positional argument, when it is one of a few (completion's shells). */
  readonly WORDS?: readonly string[];
}

export interface Command {
  readonly summary: string;
  readonly load: () => Promise<CommandModule>;
}

export const COMMANDS: Readonly<Record<string, Command>> = {
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
  completion: {
    summary: 'print a shell completion script: wsvia completion bash|zsh|fish',
    load: () => import('./completion.js'),
  },
};

/** The options `wsvia` itself takes before a command. */
export const TOP_LEVEL_FLAGS = ['--help', '-h', '--version', '-V'] as const;

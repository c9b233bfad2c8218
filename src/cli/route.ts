/** `wsvia route URL`: the route wsvia would take to URL, and why, without connecting to it. */
import { parseArgs } from 'node:util';
import { resolveRoutes, toDialTarget } from '../dial/dial.js';
import { EXIT_CODES } from '../errors.js';
import { routeHops } from '../route/choose.js';
import { exitCodesHelp, reportError, reportUsage, UsageError } from './output.js';
import { ROUTE_FLAGS, ROUTE_USAGE, routeOptionsFrom } from './route-options.js';

export const usage = `usage: wsvia route URL [options]

Prints the route wsvia would take to URL (ws://, wss://, http:// or https://) and why: the proxy, chain or
PAC entries in the order they would be tried, and the rule that chose them. Nothing is sent to URL (a PAC
file given by URL is fetched).

${ROUTE_USAGE}
      --json                 one JSON object on stdout
  -h, --help

${exitCodesHelp([0, 1, 2])}`;

/** The flags of `wsvia route` (util.parseArgs' table; shell completion reads it too). */
export const OPTIONS = {
  ...ROUTE_FLAGS,
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function run(argv: string[]): Promise<number> {
  let url: string;
  let json: boolean;
  let options;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: OPTIONS,
    });
    if (values.help) {
      process.stdout.write(usage);
      return EXIT_CODES.ok;
    }
    if (positionals.length !== 1)
      throw new UsageError(
        positionals.length === 0 ? 'missing URL' : `unexpected arguments: ${positionals.slice(1).join(' ')}`,
      );
    url = positionals[0] as string;
    json = values.json ?? false;
    options = routeOptionsFrom(values);
  } catch (e) {
    return reportUsage(e, 'route');
  }
  try {
    const target = toDialTarget(url);
    const routes = await resolveRoutes(target, options);
    if (json) {
      const out = routes.map((r) => ({
        hops: routeHops(r).map((h) => h.display),
        proxy: r.proxy?.display ?? null,
        source: r.source,
        reason: r.reason,
      }));
      process.stdout.write(`${JSON.stringify({ url, routes: out })}\n`);
      return EXIT_CODES.ok;
    }
    const lines = [`routes to ${url}${routes.length > 1 ? ', tried in this order' : ''}:`];
    routes.forEach((r, i) => {
      const hops = routeHops(r);
      const path = hops.length === 0 ? 'direct' : hops.map((h) => h.display).join(' -> ');
      lines.push(`  ${i + 1}. ${path}`, `     why: ${r.reason}`);
    });
    process.stdout.write(`${lines.join('\n')}\n`);
    return EXIT_CODES.ok;
  } catch (e) {
    return reportError(e, json);
  }
}

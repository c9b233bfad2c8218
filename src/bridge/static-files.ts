/**
 * `--web DIR`: static files on the bridge's own port, so a browser page and the WebSocket it opens share one
 * origin. GET and HEAD only; paths are resolved inside DIR by their real path (symbolic links followed), and
 * nothing outside DIR's real path is ever served.
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

function answer(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * The file `rel` names under `root`, by its real path (symbolic links followed), or undefined when there is none or
 * it lies outside the real root: a link inside DIR never serves what is outside it. A directory gives its
 * index.html, checked the same way.
 */
async function realFile(root: string, rel: string): Promise<{ file: string; size: number } | undefined> {
  const realRoot = await fs.promises.realpath(root);
  const inside = (p: string): boolean => p === realRoot || p.startsWith(realRoot + path.sep);
  let file = path.resolve(realRoot, `.${rel}`);
  if (!inside(file)) return undefined;
  for (let depth = 0; depth < 2; depth++) {
    let real: string;
    let st: fs.Stats;
    try {
      real = await fs.promises.realpath(file);
      st = await fs.promises.stat(real);
    } catch {
      return undefined;
    }
    if (!inside(real)) return undefined;
    if (st.isFile()) return { file: real, size: st.size };
    if (!st.isDirectory()) return undefined;
    file = path.join(real, 'index.html');
  }
  return undefined;
}

/** Serves `req` from `root` (an absolute directory). */
export function serveStatic(root: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return answer(res, 405, 'method not allowed\n');
  }
  let rel: string;
  try {
    rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  } catch {
    return answer(res, 400, 'bad path\n');
  }
  if (rel.includes('\0')) return answer(res, 400, 'bad path\n');
  realFile(root, rel).then(
    (found) => send(req, res, found),
    () => answer(res, 404, 'not found\n'),
  );
}

function send(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  found: { file: string; size: number } | undefined,
): void {
  if (found === undefined) return answer(res, 404, 'not found\n');
  res.writeHead(200, {
    'Content-Type': TYPES[path.extname(found.file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': found.size,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  });
  if (req.method === 'HEAD') return void res.end();
  const stream = fs.createReadStream(found.file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

/**
 * The real peers the doctor's cases need, started on loopback with test/helpers/process.ts: squid (port rules,
 * auth, connection limits), nginx (a WebSocket reverse proxy, with or without the Upgrade headers), mitmproxy.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, startPeer, tempDir, type Peer } from '../helpers/process.js';

export interface RunningPeer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  stop(): Promise<void>;
}

function running(peer: Peer, port: number, dir: string, scheme = 'http'): RunningPeer {
  return {
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    dir,
    stop: async () => {
      await peer.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface SquidOptions {
  /** `acl SSL_ports port 443` + `http_access deny CONNECT !SSL_ports`: squid's stock rule. */
  readonly sslPortsOnly?: boolean;
  /** Basic auth with this user and password. */
  readonly basicAuth?: { readonly user: string; readonly password: string };
  /**
   * Connections allowed per client at once; beyond, squid answers `503` with its own error page (the
   * `maxconn` acl with `deny_info 503:`), as an operator rations tunnels.
   */
  readonly tunnelLimit?: number;
  /** Listen with TLS (an https:// proxy) with this certificate and key (PEM). */
  readonly tls?: { readonly cert: string; readonly key: string };
}

/** The error page a squid with a tunnel limit shows (operators customise squid's pages this way). */
const TUNNEL_LIMIT_PAGE =
  '<html><head><title>ERROR: no tunnel left</title></head><body><h1>503 no tunnel left</h1><p>This proxy allows %a a limited number of tunnels at once. Close one, or try again later.</p></body></html>\n';

export async function startSquid(o: SquidOptions = {}): Promise<RunningPeer> {
  const dir = tempDir('wsvia-squid-');
  const port = await freePort();
  const lines = ['acl lo src 127.0.0.1/32'];
  if (o.tls) {
    fs.writeFileSync(path.join(dir, 'proxy-cert.pem'), o.tls.cert);
    fs.writeFileSync(path.join(dir, 'proxy-key.pem'), o.tls.key);
    lines.unshift(`https_port 127.0.0.1:${port} tls-cert=${dir}/proxy-cert.pem tls-key=${dir}/proxy-key.pem`);
  } else lines.unshift(`http_port 127.0.0.1:${port}`);
  if (o.tunnelLimit !== undefined) {
    // error_directory replaces every page: copy squid's templates and add ours.
    const errors = path.join(dir, 'errors');
    fs.cpSync('/usr/share/squid/errors/templates', errors, { recursive: true });
    fs.writeFileSync(path.join(errors, 'ERR_TUNNEL_LIMIT'), TUNNEL_LIMIT_PAGE);
    for (const f of fs.readdirSync(errors)) fs.chmodSync(path.join(errors, f), 0o644);
    fs.chmodSync(errors, 0o755);
    lines.push(
      `error_directory ${errors}`,
      `acl tunnels maxconn ${o.tunnelLimit}`,
      'deny_info 503:ERR_TUNNEL_LIMIT tunnels',
      'http_access deny tunnels',
    );
  }
  if (o.sslPortsOnly) lines.push('acl SSL_ports port 443', 'http_access deny CONNECT !SSL_ports');
  if (o.basicAuth) {
    execFileSync(
      'htpasswd',
      ['-cb', path.join(dir, 'squid.htpasswd'), o.basicAuth.user, o.basicAuth.password],
      {
        stdio: 'ignore',
      },
    );
    lines.push(
      `auth_param basic program /usr/lib/squid/basic_ncsa_auth ${dir}/squid.htpasswd`,
      'auth_param basic realm test',
      'acl authed proxy_auth REQUIRED',
      'http_access allow authed',
    );
  } else lines.push('http_access allow lo');
  lines.push(
    'http_access deny all',
    'cache deny all',
    `access_log stdio:${dir}/access.log`,
    `cache_log ${dir}/cache.log`,
    `pid_filename ${dir}/squid.pid`,
    `coredump_dir ${dir}`,
    'shutdown_lifetime 1 seconds',
  );
  fs.writeFileSync(path.join(dir, 'squid.conf'), `${lines.join('\n')}\n`);
  // Readable by the `proxy` user squid drops to.
  for (const f of fs.readdirSync(dir))
    if (fs.statSync(path.join(dir, f)).isFile()) fs.chmodSync(path.join(dir, f), 0o644);
  fs.chmodSync(dir, 0o777);
  const peer = await startPeer('squid', ['-N', '-f', path.join(dir, 'squid.conf')], {
    port,
    timeoutMs: 30_000,
  });
  return running(peer, port, dir, o.tls ? 'https' : 'http');
}

export interface NginxOptions {
  readonly upstreamPort: number;
  /** Forward the Upgrade and Connection headers (the correct WebSocket configuration). */
  readonly upgradeHeaders: boolean;
  readonly readTimeoutSeconds?: number;
}

export async function startNginx(o: NginxOptions): Promise<RunningPeer> {
  const dir = tempDir('wsvia-nginx-');
  const port = await freePort();
  const upgrade = o.upgradeHeaders
    ? 'proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";'
    : '';
  const timeout = o.readTimeoutSeconds === undefined ? '' : `proxy_read_timeout ${o.readTimeoutSeconds}s;`;
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 256; }
http { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir};
  server { listen 127.0.0.1:${port};
    location / { proxy_pass http://127.0.0.1:${o.upstreamPort}; ${upgrade} ${timeout} } } }
`,
  );
  const peer = await startPeer('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { port });
  return running(peer, port, dir);
}

export interface Mitmproxy extends RunningPeer {
  /** The CA mitmproxy signs its certificates with (PEM). */
  readonly caPem: string;
}

/**
 * A CA for mitmproxy to sign with whose name is no known product, as a corporate gateway's own CA often is:
 * only the comparison with a direct connection can tell it intercepts.
 */
export function writeCorporateCa(dir: string): void {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=Example Corp Inspection CA/O=Example Corp',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout',
      path.join(dir, 'ca.key'),
      '-out',
      path.join(dir, 'ca.crt'),
    ],
    { stdio: 'ignore' },
  );
  // mitmproxy reads its CA, key and certificate in one PEM file, from its confdir.
  fs.writeFileSync(
    path.join(dir, 'mitmproxy-ca.pem'),
    fs.readFileSync(path.join(dir, 'ca.key'), 'utf8') + fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8'),
  );
}

export async function startMitmproxy(
  o: { insecure?: boolean; corporateCa?: boolean } = {},
): Promise<Mitmproxy> {
  const dir = tempDir('wsvia-mitm-');
  if (o.corporateCa) writeCorporateCa(dir);
  const port = await freePort();
  const args = ['--listen-host', '127.0.0.1', '-p', String(port), '--set', `confdir=${dir}`, '-q'];
  if (o.insecure) args.push('--ssl-insecure');
  const peer = await startPeer('mitmdump', args, { port, timeoutMs: 60_000 });
  const caPem = fs.readFileSync(path.join(dir, o.corporateCa ? 'ca.crt' : 'mitmproxy-ca-cert.pem'), 'utf8');
  return { ...running(peer, port, dir), caPem };
}

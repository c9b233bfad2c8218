/**
 * squid on loopback, the proxy most corporate networks run, configured the ways tests need: no auth, Basic,
 * Digest, both in one 407, NTLM (squid's fake helper), the stock SSL_ports rule, a per-client connection limit
 * with its own 503 page, and an https:// listener. Started with test/helpers/process.ts.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, runningPeer, startPeer, tempDir, type RunningPeer } from './process.js';

export interface SquidOptions {
  /**
   * How squid authenticates clients: `both` offers Digest and Basic in one 407; `ntlm` runs squid's
   * `ntlm_fake_auth`, which completes the handshake and accepts any user; `negotiate` runs
   * `negotiate_kerberos_auth` with `negotiate.keytab` (see test/helpers/kdc.ts).
   */
  readonly auth?: 'none' | 'basic' | 'digest' | 'both' | 'ntlm' | 'negotiate';
  /**
   * For `auth: 'negotiate'`: the Kerberos environment (KRB5_CONFIG) the helper needs, the keytab holding the
   * service's key and its principal (`HTTP/localhost@REALM`). squid passes its environment to its helpers.
   */
  readonly negotiate?: {
    readonly env: NodeJS.ProcessEnv;
    readonly keytab: string;
    readonly principal: string;
  };
  /** Users and passwords for Basic and Digest. */
  readonly users?: Readonly<Record<string, string>>;
  /** `acl SSL_ports port 443` + `http_access deny CONNECT !SSL_ports`: squid's stock rule (403 elsewhere). */
  readonly sslPortsOnly?: boolean;
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
  const auth = o.auth ?? 'none';
  const users = o.users ?? { alice: 'wonder:land' };
  const lines: string[] = [];
  if (o.tls) {
    fs.writeFileSync(path.join(dir, 'proxy-cert.pem'), o.tls.cert);
    fs.writeFileSync(path.join(dir, 'proxy-key.pem'), o.tls.key);
    lines.push(`https_port 127.0.0.1:${port} tls-cert=${dir}/proxy-cert.pem tls-key=${dir}/proxy-key.pem`);
  } else lines.push(`http_port 127.0.0.1:${port}`);
  if (auth === 'digest' || auth === 'both') {
    // digest_file_auth reads plain `user:password` lines.
    fs.writeFileSync(
      path.join(dir, 'squid.digest'),
      Object.entries(users)
        .map(([u, p]) => `${u}:${p}`)
        .join('\n') + '\n',
    );
    lines.push(
      `auth_param digest program /usr/lib/squid/digest_file_auth ${dir}/squid.digest`,
      'auth_param digest realm test',
    );
  }
  if (auth === 'basic' || auth === 'both') {
    const file = path.join(dir, 'squid.htpasswd');
    fs.writeFileSync(file, '');
    for (const [u, p] of Object.entries(users))
      execFileSync('htpasswd', ['-b', file, u, p], { stdio: 'ignore' });
    lines.push(
      `auth_param basic program /usr/lib/squid/basic_ncsa_auth ${file}`,
      'auth_param basic realm test',
    );
  }
  if (auth === 'ntlm')
    lines.push('auth_param ntlm program /usr/lib/squid/ntlm_fake_auth', 'auth_param ntlm children 2');
  let env: NodeJS.ProcessEnv | undefined;
  if (auth === 'negotiate') {
    const n = o.negotiate;
    if (!n) throw new Error("startSquid: auth 'negotiate' needs the negotiate option");
    // The helper runs as `proxy`: give it its own readable copy of the keytab.
    const keytab = path.join(dir, 'http.keytab');
    fs.copyFileSync(n.keytab, keytab);
    env = { ...process.env, ...n.env, KRB5_KTNAME: `FILE:${keytab}` };
    lines.push(
      `auth_param negotiate program /usr/lib/squid/negotiate_kerberos_auth -k ${keytab} -s ${n.principal}`,
      'auth_param negotiate children 2',
    );
  }
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
  if (auth === 'none') lines.push('acl lo src 127.0.0.1/32', 'http_access allow lo');
  else lines.push('acl authed proxy_auth REQUIRED', 'http_access allow authed');
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
  for (const f of fs.readdirSync(dir))
    if (fs.statSync(path.join(dir, f)).isFile())
      fs.chmodSync(path.join(dir, f), f.endsWith('.keytab') ? 0o600 : 0o644);
  // squid drops privileges to the `proxy` user, which must read its config and write its logs here.
  execFileSync('chown', ['-R', 'proxy', dir]);
  const peer = await startPeer('squid', ['-N', '-f', path.join(dir, 'squid.conf')], {
    port,
    timeoutMs: 30_000,
    ...(env ? { env } : {}),
  });
  return runningPeer(peer, port, dir, {
    logFile: path.join(dir, 'access.log'),
    scheme: o.tls ? 'https' : 'http',
  });
}

/**
 * mitmproxy (mitmdump) on loopback: an intercepting proxy that signs certificates with its own CA, or with a
 * "corporate" CA whose name is no known product. Started with test/helpers/process.ts.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, runningPeer, startPeer, tempDir, type RunningPeer } from './process.js';

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
  return { ...runningPeer(peer, port, dir), caPem };
}

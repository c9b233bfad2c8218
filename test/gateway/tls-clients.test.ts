/**
 * The TLS listener serves every HTTPS client: one that sends no server name (connects by IP address) gets the
 * default certificate, as nginx and HAProxy give it.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { makeSelfSigned, type KeyPair } from '../../src/echo/self-signed.js';
import { tempDir } from '../helpers/process.js';
import { startGateway, startUpstream, type TestGateway, type Upstream } from './peers.js';

/** Completes a TLS handshake without SNI (no `servername`) and resolves with the certificate the server sent. */
function handshakeWithoutSni(port: number, ca: string): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    // An IP address as host and no servername: Node sends no server_name extension.
    const s = tls.connect({ host: '127.0.0.1', port, ca, checkServerIdentity: () => undefined });
    s.once('secureConnect', () => {
      resolve(s.getPeerCertificate());
      s.end();
    });
    s.once('error', reject);
  });
}

describe('gateway TLS listener: clients without SNI', () => {
  let cert: KeyPair;
  let up: Upstream;
  let gw: TestGateway;
  let dir: string;
  before(async () => {
    dir = tempDir();
    cert = makeSelfSigned('localhost');
    fs.writeFileSync(path.join(dir, 'cert.pem'), cert.cert);
    fs.writeFileSync(path.join(dir, 'key.pem'), cert.key);
    up = await startUpstream('up');
    gw = await startGateway(`
tls-listen: 127.0.0.1:0
tls-cert: ${dir}/cert.pem
tls-key: ${dir}/key.pem
routes: [{ path: /, upstream: ${up.url} }]
`);
  });
  after(async () => {
    await gw.gateway.close();
    await up.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a client that sends no server name gets the default certificate, not a handshake failure', async () => {
    const peer = await handshakeWithoutSni(gw.tlsPort as number, cert.cert);
    assert.equal(peer.fingerprint256, new crypto.X509Certificate(cert.cert).fingerprint256);
  });

  it('after a reload, a client without a server name gets the new certificate', async () => {
    const next = makeSelfSigned('localhost');
    fs.writeFileSync(path.join(dir, 'cert.pem'), next.cert);
    fs.writeFileSync(path.join(dir, 'key.pem'), next.key);
    gw.gateway.reload(gw.gateway.snapshot().config);
    const peer = await handshakeWithoutSni(gw.tlsPort as number, next.cert);
    assert.equal(peer.fingerprint256, new crypto.X509Certificate(next.cert).fingerprint256);
  });
});

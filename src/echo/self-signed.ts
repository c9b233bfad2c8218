/**
 * A throwaway self-signed certificate for `wsvia echo --tls` and the tests, made by the system's `openssl`
 * (Node has no API to issue X.509 certificates). The certificate is its own CA: pass it as `ca` to trust it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WsviaError } from '../errors.js';

export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

export function makeSelfSigned(
  commonName = 'localhost',
  altNames: readonly string[] = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'],
): KeyPair {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsvia-cert-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        `/CN=${commonName}`,
        '-addext',
        `subjectAltName=${altNames.join(',')}`,
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return {
      cert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8'),
      key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'),
    };
  } catch (e) {
    throw new WsviaError('CONFIG_INVALID', 'cannot generate a self-signed certificate with openssl', {
      hop: 'config',
      hint: 'install openssl (apt-get install openssl), or pass --cert and --key',
      cause: e,
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Certificates for wss tests, made once per test process. */
import { makeSelfSigned, type KeyPair } from '../../src/echo/self-signed.js';

let cached: KeyPair | undefined;
/** A self-signed certificate for localhost, 127.0.0.1 and ::1; it is its own CA. */
export function localhostCert(): KeyPair {
  cached ??= makeSelfSigned('localhost');
  return cached;
}

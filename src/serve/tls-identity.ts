/**
 * A server's TLS identity (certificate and key), checked when the server is built: a file that is not PEM, or a
 * key that does not match its certificate, is a configuration error (`CONFIG_INVALID`, exit 2) before anything
 * listens, not an OpenSSL message and exit 1.
 */
import tls from 'node:tls';
import { WsviaError } from '../errors.js';

/** `what` names the pair for the message (`--tls-cert/--tls-key`, or the files). */
export function serverSecureContext(
  identity: { readonly cert: string | Buffer; readonly key: string | Buffer },
  what: string,
): tls.SecureContext {
  try {
    return tls.createSecureContext({ cert: identity.cert, key: identity.key });
  } catch (e) {
    // One line: the reason and what to check, no hint line below it.
    const reason = (e as Error).message;
    throw new WsviaError(
      'CONFIG_INVALID',
      `the TLS certificate and key (${what}) cannot be used: ${reason}: both must be PEM, and the key must match the certificate`,
      { hop: 'config', cause: e },
    );
  }
}

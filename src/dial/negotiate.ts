/**
 * Negotiate (SPNEGO, RFC 4559) for proxies, through the optional `kerberos` package: it is imported only when a
 * proxy's Negotiate challenge is answered, so wsvia installs and runs without it. Credentials come from the
 * Kerberos ticket cache (`kinit`), as curl's `--proxy-negotiate -U :` does: no password passes through wsvia.
 * It lives in dial/ rather than auth/ because the GSS-API library talks to the KDC (auth/ is sans-I/O).
 */
import { WsviaError } from '../errors.js';

/** The subset of the `kerberos` package's client used here. */
interface KerberosClient {
  step(challenge: string): Promise<string>;
}
interface KerberosModule {
  initializeClient(service: string, options: { mechOID?: number }): Promise<KerberosClient>;
  GSS_MECH_OID_SPNEGO: number;
}

/** One Negotiate exchange: the first token, then a token for each continuation the proxy sends. */
export interface NegotiateContext {
  /** The next `Proxy-Authorization` value for the proxy's token (empty for the first leg). */
  next(token: string): Promise<string>;
}

async function loadKerberos(proxy: string): Promise<KerberosModule> {
  try {
    // A variable specifier keeps tsc from needing the package's types when it is absent.
    const name = 'kerberos';
    const m = (await import(name)) as { default?: KerberosModule } & Partial<KerberosModule>;
    return (m.default ?? m) as KerberosModule;
  } catch (e) {
    throw new WsviaError(
      'PROXY_AUTH_REQUIRED',
      `proxy ${proxy} asks for Negotiate (Kerberos), which needs the optional kerberos package`,
      {
        hop: 'proxy',
        proxy,
        hint: 'npm install kerberos (it builds against the system GSS-API: apt-get install libkrb5-dev), or answer another scheme (--proxy-ntlm, --proxy-digest)',
        details: { package: 'kerberos', cause: e instanceof Error ? e.message : String(e) },
      },
    );
  }
}

function gssError(e: unknown, proxy: string, service: string): WsviaError {
  const message = e instanceof Error ? e.message : String(e);
  // MIT's messages for an empty or expired cache: "No Kerberos credentials available", "Ticket expired",
  // "No credentials cache found".
  const noTicket = /credentials|ticket expired|cache/i.test(message);
  return new WsviaError(
    'PROXY_AUTH_REQUIRED',
    noTicket
      ? `Negotiate for proxy ${proxy}: no usable Kerberos ticket (${message})`
      : `Negotiate for proxy ${proxy} failed: ${message}`,
    {
      hop: 'proxy',
      proxy,
      hint: noTicket
        ? 'run kinit (e.g. kinit user@REALM) to get a ticket, then try again; klist shows the tickets you have'
        : `check that the KDC knows the service ${service.replace('@', '/')} and that the proxy's keytab holds its key`,
      details: { service, gss: message },
    },
  );
}

/**
 * Starts a Negotiate exchange with the proxy at `host`: the service is `HTTP@host` (GSS host-based name,
 * RFC 4559 section 4.1, `HTTP/host` in Kerberos terms).
 */
export async function startNegotiate(host: string, proxy: string): Promise<NegotiateContext> {
  const kerberos = await loadKerberos(proxy);
  const service = `HTTP@${host.replace(/^\[|\]$/g, '')}`;
  let client: KerberosClient;
  try {
    client = await kerberos.initializeClient(service, { mechOID: kerberos.GSS_MECH_OID_SPNEGO });
  } catch (e) {
    throw gssError(e, proxy, service);
  }
  return {
    async next(token: string): Promise<string> {
      try {
        const out = await client.step(token);
        return out ? `Negotiate ${out}` : '';
      } catch (e) {
        throw gssError(e, proxy, service);
      }
    },
  };
}

/**
 * TLS to an https:// proxy or to the target (directly or inside a tunnel). Verification is done here rather than
 * by OpenSSL's reject, so that a failure can name the certificate that was presented (its issuer tells an
 * intercepting proxy from a self-signed server), and a peer that answers a ClientHello with plain HTTP can be
 * quoted instead of reported as "wrong version number".
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { WsviaError, type PeerAnswer } from '../errors.js';
import { selectedHeaders } from '../protocol/connect-client.js';
import { printable, ResponseHeadReader } from '../protocol/head.js';
import { excerptText } from '../protocol/body.js';
import type { Tracer } from '../observe/trace.js';
import { knownInterceptor, summarizeCertificate, type CertSummary } from './interception.js';
import type { CaOption } from './options.js';
import { RecordingDuplex } from './sniff.js';
import { step } from './wait.js';

export interface TlsStep {
  /** The host the certificate must be valid for; also the SNI unless it is an IP address. */
  readonly host: string;
  readonly servername?: string;
  readonly to: 'proxy' | 'server';
  /** How to name the peer in messages. */
  readonly peer: string;
  /** The proxy whose tunnel this TLS runs in, when it does. */
  readonly viaProxy?: string;
  readonly ca: CaOption | undefined;
  /** A client certificate and its key, presented when the peer asks. */
  readonly cert?: string | Buffer | undefined;
  readonly key?: string | Buffer | undefined;
  readonly rejectUnauthorized: boolean;
  readonly alpn: readonly string[] | undefined;
  readonly timeout: number;
  readonly signal: AbortSignal | undefined;
  readonly tracer: Tracer;
}

export interface TlsResult {
  readonly socket: tls.TLSSocket;
  readonly certificate: CertSummary | undefined;
}

const NOT_TLS = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_UNKNOWN_PROTOCOL',
  'ERR_SSL_HTTP_REQUEST',
  'ERR_SSL_RECORD_LAYER_FAILURE',
]);

const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
]);

export function startTls(stream: Duplex, s: TlsStep): Promise<TlsResult> {
  const started = s.tracer.elapsed();
  const servername = s.servername ?? (net.isIP(s.host) === 0 ? s.host : undefined);
  const fields =
    s.to === 'proxy' ? { proxy: s.peer } : { target: s.peer, ...(s.viaProxy ? { proxy: s.viaProxy } : {}) };
  return step<TlsResult>(
    s.timeout,
    () =>
      new WsviaError('TLS_TIMEOUT', `no TLS handshake with ${s.peer} within ${s.timeout} ms`, {
        hop: s.to === 'proxy' ? 'proxy' : 'tls',
        ...fields,
        hint:
          s.to === 'proxy'
            ? 'is this proxy really https://? most proxies speak plain http:// even for wss targets'
            : 'the server or something in between does not complete TLS; is the port a TLS port?',
      }),
    s.signal,
    (ctl) => {
      const socket = tls.connect({
        socket: stream,
        host: s.host,
        ...(servername ? { servername } : {}),
        ...(s.ca === undefined ? {} : { ca: s.ca as string | Buffer | (string | Buffer)[] }),
        ...(s.cert === undefined ? {} : { cert: s.cert }),
        ...(s.key === undefined ? {} : { key: s.key }),
        ...(s.alpn ? { ALPNProtocols: [...s.alpn] } : {}),
        // Verified below, so that a failure can describe the certificate presented.
        rejectUnauthorized: false,
      });
      const onError = (err: NodeJS.ErrnoException): void => {
        socket.destroy();
        ctl.reject(handshakeError(err, s, stream, fields));
      };
      const onClose = (): void =>
        ctl.reject(
          handshakeError(Object.assign(new Error('closed'), { code: 'ECONNRESET' }), s, stream, fields),
        );
      const onSecure = (): void => {
        const certificate = summarizeCertificate(socket.getPeerCertificate());
        s.tracer.emit({
          type: 'tls',
          to: s.to,
          servername,
          protocol: socket.getProtocol(),
          alpn: socket.alpnProtocol,
          subject: certificate?.subject,
          issuer: certificate?.issuer,
          authorized: socket.authorized,
          ms: s.tracer.elapsed() - started,
        });
        if (s.rejectUnauthorized && !socket.authorized) {
          socket.destroy();
          ctl.reject(verifyError(String(socket.authorizationError), certificate, s, fields));
          return;
        }
        if (stream instanceof RecordingDuplex) stream.stopRecording();
        ctl.resolve({ socket, certificate });
      };
      socket.once('secureConnect', onSecure);
      socket.once('error', onError);
      socket.once('close', onClose);
      ctl.onSettle(() => {
        socket.removeListener('secureConnect', onSecure);
        socket.removeListener('error', onError);
        socket.removeListener('close', onClose);
      });
      ctl.onSettle(() => {
        if (!socket.authorized && !socket.destroyed && socket.connecting) socket.destroy();
      });
    },
  );
}

type Fields = { proxy?: string; target?: string };

function verifyError(code: string, cert: CertSummary | undefined, s: TlsStep, fields: Fields): WsviaError {
  const presented = cert
    ? ` (certificate ${cert.subject || '(no subject)'} issued by ${cert.issuer || '(no issuer)'})`
    : '';
  const details = { verifyError: code, ...(cert ? { certificate: cert } : {}) };
  const hop = s.to === 'proxy' ? ('proxy' as const) : ('tls' as const);
  const untrusted = (hint: string): WsviaError =>
    new WsviaError('TLS_UNTRUSTED', `the certificate of ${s.peer} is not trusted (${code})${presented}`, {
      hop,
      ...fields,
      details,
      hint,
    });
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new WsviaError(
      'TLS_HOSTNAME_MISMATCH',
      `the certificate of ${s.peer} is not valid for ${s.host}${presented}`,
      {
        hop,
        ...fields,
        details,
        hint: s.viaProxy
          ? 'a proxy in between may be intercepting TLS; otherwise the server presents the wrong certificate'
          : 'the server presents a certificate for another name; connect by the name it is issued for',
      },
    );
  }
  if (s.to === 'server' && s.viaProxy && cert && !cert.selfSigned) {
    const product = knownInterceptor(cert.issuer);
    const trust =
      "trust the proxy's CA with --ca FILE (ask its administrator for it), or ask for an inspection exception";
    if (product) {
      return new WsviaError(
        'TLS_INTERCEPTED',
        `${s.viaProxy} intercepts TLS: ${s.peer} presented a certificate issued by ${cert.issuer} (${product}), which is not trusted (${code})`,
        {
          hop,
          ...fields,
          details: { ...details, interceptor: product },
          hint: trust,
        },
      );
    }
    return untrusted(
      `the issuer is not the server's usual CA? then ${s.viaProxy} may be intercepting TLS: ${trust}`,
    );
  }
  const expired = code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID';
  const option = s.to === 'proxy' ? '--proxy-ca FILE (or --proxy-insecure)' : '--ca FILE (or --insecure)';
  return untrusted(
    expired
      ? `the certificate is outside its validity period (${cert?.validFrom ?? '?'} to ${cert?.validTo ?? '?'}); check the clock`
      : UNTRUSTED.has(code) || cert?.selfSigned
        ? `trust its CA with ${option}`
        : `verification failed: trust the right CA with ${option}`,
  );
}

/** What a non-TLS answer to a ClientHello said, as a PeerAnswer, when it was HTTP. */
export function describeNonTls(bytes: Buffer): PeerAnswer | undefined {
  if (bytes.length === 0) return undefined;
  if (!bytes.subarray(0, 5).equals(Buffer.from('HTTP/'))) return { statusLine: printable(bytes, 60) };
  try {
    const reader = new ResponseHeadReader({ peer: 'peer', hop: 'tunnel' });
    const r = reader.receive(bytes);
    if (!r)
      return {
        statusLine: printable(
          bytes.subarray(0, bytes.indexOf(0x0a) > 0 ? bytes.indexOf(0x0a) : 60),
          120,
        ).replace(/\\r$/, ''),
      };
    const h = r.head;
    const body = excerptText(Buffer.from(r.leftover).toString('utf8'), 200);
    return {
      statusLine: `HTTP/${h.version} ${h.status}${h.reason ? ` ${h.reason}` : ''}`,
      status: h.status,
      headers: selectedHeaders(h),
      ...(body ? { bodyExcerpt: body } : {}),
    };
  } catch {
    return { statusLine: printable(bytes, 60) };
  }
}

function handshakeError(err: NodeJS.ErrnoException, s: TlsStep, stream: Duplex, fields: Fields): WsviaError {
  const recorded = stream instanceof RecordingDuplex ? stream.recorded : Buffer.alloc(0);
  const hop = s.to === 'proxy' ? ('proxy' as const) : ('tls' as const);
  const looksHttp = recorded.subarray(0, 5).equals(Buffer.from('HTTP/'));
  if (
    NOT_TLS.has(err.code ?? '') ||
    /wrong version number|packet length too long|unknown protocol/i.test(err.message) ||
    looksHttp
  ) {
    const answer = describeNonTls(recorded);
    if (s.to === 'server' && s.viaProxy && answer?.status !== undefined) {
      // The tunnel was granted, then the ClientHello was answered in plain HTTP: the gateway tried TLS to the
      // server itself (TLS inspection) and failed, and tells us so in HTTP (McAfee's "500 handshakefailed").
      const via = answer.headers?.find(([k]) => k.toLowerCase() === 'via')?.[1];
      const server = answer.headers?.find(([k]) => k.toLowerCase() === 'server')?.[1];
      // Gateways name themselves in Via or Server ("1.0 10.0.0.1 (McAfee Web Gateway 7.8)"): say which product.
      const product = knownInterceptor(`${via ?? ''} ${server ?? ''}`);
      return new WsviaError(
        'TLS_NOT_SPOKEN',
        `${s.viaProxy} granted the tunnel, then answered the TLS handshake for ${s.peer} in plain HTTP: "${answer.statusLine.replace(/^HTTP\/\d\.\d /, '')}"${via ? ` (Via: ${via})` : ''}`,
        {
          hop: 'tunnel',
          ...fields,
          answer,
          details: { interceptingGateway: true, ...(product ? { interceptor: product } : {}) },
          hint: `the gateway${product ? ` (${product})` : ''} inspects TLS and failed its own TLS handshake with ${s.host}: ask its administrator to trust the server's certificate or to add an inspection exception for ${s.host}`,
        },
      );
    }
    return new WsviaError(
      'TLS_NOT_SPOKEN',
      `${s.peer} did not answer the TLS handshake with TLS${answer ? `: it sent "${answer.statusLine}"` : ''}`,
      {
        hop,
        ...fields,
        ...(answer ? { answer } : {}),
        hint:
          s.to === 'proxy'
            ? 'the proxy speaks plain HTTP: use an http:// proxy URL'
            : 'the port does not speak TLS: use ws:// instead of wss://, or the right port',
      },
    );
  }
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
    return new WsviaError('CONNECTION_RESET', `${s.peer} closed the connection during the TLS handshake`, {
      hop,
      ...fields,
      hint: s.viaProxy
        ? 'the proxy or the server dropped the handshake: the proxy may block this destination or inspect TLS'
        : 'the server dropped the handshake: check the port and its TLS configuration (SNI, protocol versions)',
      cause: err,
    });
  }
  return new WsviaError(
    s.to === 'proxy' ? 'PROXY_TLS_FAILED' : 'TLS_FAILED',
    `TLS handshake with ${s.peer} failed: ${err.message}`,
    {
      hop,
      ...fields,
      hint: /alert/i.test(err.message)
        ? 'the peer refused the handshake (protocol version, cipher, SNI or a client certificate)'
        : 'check the TLS settings on both ends',
      cause: err,
    },
  );
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRetryable } from '../../src/client/reconnecting.js';
import { ERROR_CODES, WsviaError, type ErrorCode } from '../../src/errors.js';

function err(code: ErrorCode, status?: number): WsviaError {
  return new WsviaError(code, 'x', {
    hop: 'proxy',
    ...(status === undefined ? {} : { answer: { statusLine: `${status} X`, status } }),
  });
}

const RETRYABLE: readonly ErrorCode[] = [
  'DNS_FAILED',
  'CONNECTION_REFUSED',
  'CONNECTION_RESET',
  'PROXY_CONNECT_FAILED',
  'PROXY_UNAVAILABLE',
  'TCP_TIMEOUT',
  'TUNNEL_TIMEOUT',
  'TLS_TIMEOUT',
  'UPGRADE_TIMEOUT',
  'PING_TIMEOUT',
  'WEBSOCKET_CLOSED',
];

describe('isRetryable', () => {
  it('retries transient network failures and timeouts, nothing a retry cannot cure', () => {
    for (const code of ERROR_CODES) {
      if (code === 'UPGRADE_REJECTED' || code === 'PROXY_REFUSED') continue;
      assert.equal(isRetryable(err(code)), RETRYABLE.includes(code), code);
    }
  });

  it('never retries credentials, trust, policy or configuration failures', () => {
    for (const code of [
      'PROXY_AUTH_REQUIRED',
      'AUTH_FAILED',
      'TLS_UNTRUSTED',
      'TLS_INTERCEPTED',
      'TLS_HOSTNAME_MISMATCH',
      'TLS_NOT_SPOKEN',
      'DESTINATION_DENIED',
      'INVALID_ARGUMENT',
      'CONFIG_INVALID',
      'PROTOCOL_ERROR',
      'HEAD_TOO_LARGE',
      'QUEUE_FULL',
    ] as const) {
      assert.equal(isRetryable(err(code)), false, code);
    }
  });

  it('retries a rejected upgrade only on 5xx or 429', () => {
    for (const [status, want] of [
      [500, true],
      [502, true],
      [503, true],
      [599, true],
      [429, true],
      [400, false],
      [401, false],
      [403, false],
      [404, false],
      [426, false],
      [undefined, false],
    ] as const) {
      assert.equal(isRetryable(err('UPGRADE_REJECTED', status)), want, String(status));
    }
  });

  it('retries a proxy refusal only on 429', () => {
    assert.equal(isRetryable(err('PROXY_REFUSED', 429)), true);
    for (const s of [400, 403, 404, 500, undefined])
      assert.equal(isRetryable(err('PROXY_REFUSED', s)), false, String(s));
  });

  it('never retries what is not a WsviaError', () => {
    for (const e of [
      new Error('ECONNRESET'),
      Object.assign(new Error('x'), { code: 'CONNECTION_RESET' }),
      'CONNECTION_RESET',
      undefined,
      null,
    ]) {
      assert.equal(isRetryable(e), false);
    }
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { makeSelfSigned, type KeyPair } from '../../src/echo/self-signed.js';
import { runDoctor } from '../../src/doctor/run-doctor.js';
import {
  GATEWAY_VIA,
  startInterceptingGateway,
  type ScriptedGateway,
} from '../helpers/intercepting-gateway.js';
import { startMitmproxy, type Mitmproxy } from '../helpers/mitmproxy.js';

describe('doctor: TLS interception', () => {
  let keys: KeyPair;
  let echo: EchoServer;
  let verifying: Mitmproxy; // verifies the server, so fails against its self-signed certificate
  let insecure: Mitmproxy; // --ssl-insecure: accepts the server and relays
  let gateway: ScriptedGateway;
  let corporate: Mitmproxy; // signs with a CA whose name is no known product
  before(async () => {
    keys = makeSelfSigned();
    echo = await startEchoServer({ tls: keys, mirror: true });
    [verifying, insecure, gateway, corporate] = await Promise.all([
      startMitmproxy(),
      startMitmproxy({ insecure: true }),
      startInterceptingGateway(),
      startMitmproxy({ insecure: true, corporateCa: true }),
    ]);
  });
  after(async () => {
    await Promise.all([
      verifying?.stop(),
      insecure?.stop(),
      gateway?.close(),
      corporate?.stop(),
      echo?.close(),
    ]);
  });

  it('mitmproxy with its CA untrusted: TLS_INTERCEPTED, the issuer named, how to trust it', async () => {
    const r = await runDoctor(echo.url, { proxy: insecure.url, ca: keys.cert, env: {} });
    assert.equal(r.ok, false);
    assert.equal(r.code, 'TLS_INTERCEPTED');
    const tls = r.steps.find((s) => s.step === 'tls');
    assert.equal(tls?.ok, false);
    assert.match(tls?.detail ?? '', /mitmproxy/);
    assert.ok(
      tls?.more?.some((l) => /direct connection sees another certificate/.test(l)),
      tls?.more?.join('\n'),
    );
    assert.ok(
      r.advice.some((a) => /--ca FILE/.test(a) && /mitmproxy/.test(a)),
      r.advice.join('\n'),
    );
  });

  it('mitmproxy with its CA trusted: ok, with a warning that the path is inspected', async () => {
    const r = await runDoctor(echo.url, { proxy: insecure.url, ca: insecure.caPem, env: {} });
    assert.equal(r.ok, true, JSON.stringify(r, null, 1));
    assert.equal(r.code, null);
    const tls = r.steps.find((s) => s.step === 'tls');
    assert.equal(tls?.ok, true);
    assert.equal(tls?.warning, true);
    assert.match(tls?.detail ?? '', /INTERCEPTED by mitmproxy/);
    assert.match(r.summary, /inspected by mitmproxy/);
    assert.ok(r.advice.some((a) => /^warning: TLS to .* is inspected by mitmproxy/.test(a)));
    const rt = r.steps.find((s) => s.step === 'roundtrip');
    assert.equal(rt?.ok, true);
    assert.match(rt?.detail ?? '', /echoed back/);
  });

  it('mitmproxy failing its own TLS to the server answers the upgrade itself: shown as the interceptor', async () => {
    const r = await runDoctor(echo.url, { proxy: verifying.url, ca: verifying.caPem, env: {} });
    assert.equal(r.ok, false);
    assert.equal(r.code, 'UPGRADE_REJECTED');
    const up = r.steps.find((s) => s.step === 'upgrade');
    assert.equal(up?.ok, false);
    assert.match(
      up?.detail ?? '',
      /intercepting proxy \(mitmproxy\) answered the upgrade itself, not the server/,
    );
    assert.match(up?.detail ?? '', /502 Bad Gateway/);
    assert.match(up?.detail ?? '', /[Cc]ertificate verify failed/);
    assert.ok(
      r.advice.some((a) => /failed its own TLS connection to the server/.test(a)),
      r.advice.join('\n'),
    );
  });

  it('a gateway answering the ClientHello with "500 handshakefailed" (McAfee): its answer, its Via, what to ask', async () => {
    const r = await runDoctor(echo.url, { proxy: gateway.url, ca: keys.cert, env: {} });
    assert.equal(r.ok, false);
    assert.equal(r.code, 'TLS_NOT_SPOKEN');
    const proxy = r.steps.find((s) => s.step === 'proxy');
    assert.equal(proxy?.ok, true);
    assert.match(proxy?.detail ?? '', /HTTP\/1\.0 200 Connection established/);
    const tls = r.steps.find((s) => s.step === 'tls');
    assert.equal(tls?.ok, false);
    assert.match(tls?.detail ?? '', /500 handshakefailed/);
    assert.ok(tls?.detail.includes(GATEWAY_VIA), tls?.detail);
    assert.ok(
      r.advice.some((a) =>
        /McAfee\/Skyhigh Web Gateway\) inspects TLS and failed its own TLS handshake with 127\.0\.0\.1/.test(
          a,
        ),
      ),
      r.advice.join('\n'),
    );
    assert.ok(r.advice.some((a) => /inspection exception/.test(a)));
  });

  it('an interceptor with an unknown CA name is found by comparing with the direct certificate', async () => {
    const r = await runDoctor(echo.url, { proxy: corporate.url, ca: keys.cert, env: {} });
    assert.equal(r.code, 'TLS_INTERCEPTED');
    assert.match(r.summary, /Example Corp Inspection CA/);
    assert.match(r.summary, /a direct connection sees another certificate/);
    const tls = r.steps.find((s) => s.step === 'tls');
    assert.ok(tls?.more?.some((l) => /direct connection sees another certificate \(CN=localhost/.test(l)));
  });

  it('a self-signed server reached directly: TLS_UNTRUSTED, the certificate shown, no interception claimed', async () => {
    const r = await runDoctor(echo.url, { proxy: false });
    assert.equal(r.code, 'TLS_UNTRUSTED');
    const tls = r.steps.find((s) => s.step === 'tls');
    assert.ok(
      tls?.more?.some((l) => /^certificate: CN=localhost issued by CN=localhost, valid /.test(l)),
      tls?.more?.join('\n'),
    );
    assert.doesNotMatch(JSON.stringify(r), /INTERCEPT/i);
    assert.ok(r.advice.some((a) => /--ca FILE/.test(a)));
  });
});

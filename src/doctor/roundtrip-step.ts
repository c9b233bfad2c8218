/**
 * The `roundtrip` step from its outcome, and what the mirror report says intermediaries did to the upgrade request.
 */
import { WsviaError } from '../errors.js';
import { diffHeaders, isEmptyDiff } from './header-diff.js';
import type { DoctorStep } from './report.js';
import { mirrorOf, type RoundtripOutcome } from './roundtrip.js';
import { requestFromText, type Transcript } from './transcript.js';

export function roundtripStep(
  rt: RoundtripOutcome,
  messages: readonly string[],
  t: Transcript,
): { step: DoctorStep; error?: WsviaError; advice: string[] } {
  const advice: string[] = [];
  if (rt.closed && !rt.echoed) {
    const error = new WsviaError(
      'WEBSOCKET_CLOSED',
      `the connection closed (${rt.closedHow ?? 'closed'}) ${Math.round(rt.waitedMs)} ms after a message was sent, before it came back`,
      {
        hop: 'websocket',
        hint: 'the server or an intermediary closes new WebSockets: check the server log, or an intermediary that allows only short requests',
      },
    );
    return { step: { step: 'roundtrip', ok: false, ms: rt.waitedMs, detail: error.summary }, error, advice };
  }
  const more: string[] = [];
  let mirrorNote = '';
  const mirror = mirrorOf(messages);
  const sentText = t.find('head', (e) => e.from === 'client' && e.to === 'server')?.event.text;
  const sent = sentText ? requestFromText(sentText) : undefined;
  if (mirror && sent) {
    const d = diffHeaders(sent.headers, mirror.headers);
    if (isEmptyDiff(d)) mirrorNote = '; the server received the upgrade request headers as sent';
    else {
      const parts = [
        d.removed.length ? `removed ${d.removed.join(', ')}` : '',
        d.added.length ? `added ${d.added.map((h) => h.split(':')[0]).join(', ')}` : '',
        d.changed.length ? `changed ${d.changed.map((h) => h.split(':')[0]).join(', ')}` : '',
      ].filter((x) => x);
      mirrorNote = `; intermediaries ${parts.join('; ')}`;
      for (const h of d.removed) more.push(`removed: ${h}`);
      for (const h of d.added) more.push(`added: ${h}`);
      for (const h of d.changed) more.push(`changed: ${h}`);
      if (d.added.some((h) => /^proxy-authorization:/i.test(h)) || d.removed.length + d.added.length > 0) {
        advice.push(
          `intermediaries rewrote the upgrade request (${parts.join('; ')}): fine if expected (X-Forwarded-For from a reverse proxy), a concern if a header the server needs went missing`,
        );
      }
    }
    if (mirror.tls)
      more.push(
        `the server saw TLS ${mirror.tls.protocol ?? '?'}, SNI ${mirror.tls.servername || '(none)'}, ALPN ${mirror.tls.alpn || '(none)'}`,
      );
    more.push(
      `the server saw the request from ${mirror.remoteAddress ?? '?'}: ${mirror.method} ${mirror.url}`,
    );
  }
  if (rt.echoed) {
    return {
      step: {
        step: 'roundtrip',
        ok: true,
        ms: rt.ms ?? 0,
        detail: `1 text message sent and echoed back in ${rt.ms ?? 0} ms${mirrorNote}`,
        more,
      },
      advice,
    };
  }
  return {
    step: {
      step: 'roundtrip',
      ok: true,
      warning: true,
      ms: rt.waitedMs,
      detail: `1 text message sent; ${rt.other ? 'another message came back: the server does not echo' : `nothing came back within ${Math.round(rt.waitedMs)} ms: the server does not echo (a wsvia echo --mirror target shows more)`}${mirrorNote}`,
      more,
    },
    advice,
  };
}

/**
 * The `roundtrip` step: one message each way over the open WebSocket, timed. When the target is `wsvia echo
 * --mirror`, its first message reports the upgrade request as the server received it; the doctor keeps it to
 * list what intermediaries removed or added.
 */
import { randomBytes } from 'node:crypto';
import type WebSocket from 'ws';
import type { ReceivedUpgrade } from '../echo/echo-server.js';

/** Messages received since the socket opened, kept from the first moment (the mirror report comes first). */
export class Inbox {
  readonly #messages: string[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  static readonly MAX = 16;
  /** The close code once closed (1006: no close frame came). */
  closeCode: number | undefined;
  closeReason = '';

  constructor(ws: WebSocket) {
    // Binary messages are decoded as UTF-8 too: a server that echoes text as binary still echoes.
    ws.on('message', (data: Buffer) => {
      if (this.#messages.length < Inbox.MAX) this.#messages.push(data.toString());
      this.#wake?.();
    });
    ws.once('close', (code: number, reason: Buffer) => {
      this.#closed = true;
      this.closeCode = code;
      this.closeReason = reason.toString().slice(0, 123);
      this.#wake?.();
    });
  }

  get messages(): readonly string[] {
    return this.#messages;
  }

  /** Waits until `pred` holds for some message, the socket closes, or `ms` pass. */
  async waitFor(pred: (m: string) => boolean, ms: number): Promise<string | undefined> {
    const deadline = performance.now() + ms;
    for (;;) {
      const found = this.#messages.find(pred);
      if (found !== undefined || this.#closed) return found;
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }
}

/** The mirror report among the messages, if the server sent one. */
export function mirrorOf(messages: readonly string[]): ReceivedUpgrade | undefined {
  for (const m of messages) {
    if (!m.startsWith('{"wsviaMirror"')) continue;
    try {
      const r = (JSON.parse(m) as { wsviaMirror?: ReceivedUpgrade }).wsviaMirror;
      if (r && Array.isArray(r.headers)) return r;
    } catch {
      // Not a report after all: an ordinary message.
    }
  }
  return undefined;
}

export interface RoundtripOutcome {
  /** Milliseconds from send to the echo, or undefined when none came back. */
  readonly ms: number | undefined;
  readonly echoed: boolean;
  /** Some other message came back instead (the server does not echo). */
  readonly other: boolean;
  readonly closed: boolean;
  readonly waitedMs: number;
  /** How it closed, when it did: `close frame 4000 "idle"`, or `no close frame (1006)`. */
  readonly closedHow?: string;
}

/** Sends one text message and waits for it to come back. */
export async function roundtrip(ws: WebSocket, inbox: Inbox, timeoutMs: number): Promise<RoundtripOutcome> {
  const probe = `wsvia-doctor ${randomBytes(6).toString('hex')}`;
  const before = inbox.messages.length;
  const sentAt = performance.now();
  if (ws.readyState !== ws.OPEN)
    return { ms: undefined, echoed: false, other: false, closed: true, waitedMs: 0, ...closedHow(inbox) };
  ws.send(probe);
  const got = await inbox.waitFor((m) => m === probe, timeoutMs);
  const ms = Math.round((performance.now() - sentAt) * 10) / 10;
  const others = inbox.messages.slice(before).filter((m) => m !== probe && !m.startsWith('{"wsviaMirror"'));
  return {
    ms: got === undefined ? undefined : ms,
    echoed: got !== undefined,
    other: others.length > 0,
    closed: ws.readyState !== ws.OPEN,
    waitedMs: ms,
    ...closedHow(inbox),
  };
}

function closedHow(inbox: Inbox): { closedHow?: string } {
  const code = inbox.closeCode;
  if (code === undefined) return {};
  if (code === 1006) return { closedHow: 'no close frame (1006)' };
  return {
    closedHow: `close frame ${code}${inbox.closeReason ? ` ${JSON.stringify(inbox.closeReason)}` : ''}`,
  };
}

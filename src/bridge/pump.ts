/**
 * Carries bytes between one TCP socket and one WebSocket, both ways, with backpressure both ways (a slow reader on
 * either side pauses the other side's reads instead of growing a buffer) and half-closes carried as
 * `wsvia.tunnel.v1` control messages when the peer speaks it. Used by the bridge (WebSocket -> target) and by the
 * tunnel (local TCP -> WebSocket) alike: the two ends differ only in which side dialled.
 */
import type { Duplex } from 'node:stream';
import type WebSocket from 'ws';
import { formatControlMessage, HalfClose, parseControlMessage } from '../protocol/tunnel-control.js';

export const CLOSED_BY = ['socket', 'websocket', 'error', 'bridge'] as const;
/** Which side ended the session first: the TCP peer, the WebSocket peer, a failure, or the bridge itself. */
export type ClosedBy = (typeof CLOSED_BY)[number];

export interface PumpOptions {
  /** The WebSocket negotiated `wsvia.tunnel.v1`: half-closes travel as control messages. */
  readonly halfClose: boolean;
  /** Pause reading TCP while more than this many bytes wait to go out on the WebSocket (default 256 KiB). */
  readonly highWaterMark?: number;
  /**
   * Without half-close, what to do when the TCP side reads EOF: `undefined` closes the WebSocket at once (what
   * websockify does when its target closes); a number keeps it open until the WebSocket peer has been silent that
   * many ms, so an answer to a request that ended with EOF still arrives.
   */
  readonly linger?: number;
  /** Sees every chunk, for recordings. */
  readonly onData?: (from: 'socket' | 'websocket', bytes: Buffer) => void;
  /** Notes for the trace (e.g. that a half-close could not be carried). */
  readonly onNote?: (text: string) => void;
}

export interface PumpResult {
  readonly bytesFromSocket: number;
  readonly bytesFromWebSocket: number;
  readonly closedBy: ClosedBy;
  readonly wsCloseCode: number;
}

const DEFAULT_HIGH_WATER = 256 * 1024;

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * Starts carrying bytes; resolves when both the socket and the WebSocket are closed. The socket must have been
 * created with `allowHalfOpen: true` so that its peer's EOF does not end our writes too.
 */
export function pump(socket: Duplex, ws: WebSocket, options: PumpOptions): Promise<PumpResult> {
  const high = options.highWaterMark ?? DEFAULT_HIGH_WATER;
  const ends = new HalfClose();
  let fromSocket = 0;
  let fromWs = 0;
  let closedBy: ClosedBy | undefined;
  let wsCloseCode = 0;
  let socketPaused = false;
  let linger: NodeJS.Timeout | undefined;
  const first = (who: ClosedBy): void => {
    closedBy ??= who;
  };
  const closeWs = (code: number, reason = ''): void => {
    clearTimeout(linger);
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
  };
  const armLinger = (): void => {
    if (options.linger === undefined || !ends.done) return;
    clearTimeout(linger);
    linger = setTimeout(() => closeWs(1000), options.linger);
  };

  return new Promise<PumpResult>((resolve) => {
    let open = 2;
    const closedOne = (): void => {
      if (--open === 0) {
        clearTimeout(linger);
        resolve({
          bytesFromSocket: fromSocket,
          bytesFromWebSocket: fromWs,
          closedBy: closedBy ?? 'bridge',
          wsCloseCode,
        });
      }
    };

    const afterSend = (): void => {
      if (socketPaused && ws.bufferedAmount <= high / 2) {
        socketPaused = false;
        socket.resume();
      }
    };
    socket.on('data', (chunk: Buffer) => {
      fromSocket += chunk.length;
      options.onData?.('socket', chunk);
      if (ws.readyState !== ws.OPEN) return;
      ws.send(chunk, { binary: true }, afterSend);
      // ws has no 'drain': the send callback fires as each frame reaches the kernel (backpressure, STYLE §14).
      if (ws.bufferedAmount > high && !socketPaused) {
        socketPaused = true;
        socket.pause();
      }
    });
    socket.on('drain', () => ws.resume());
    socket.on('end', () => {
      first('socket');
      if (options.halfClose) {
        // RFC 9293 §3.6: the peer's FIN ends one direction; the other may still carry the answer.
        if (ends.localEnded() && ws.readyState === ws.OPEN) ws.send(formatControlMessage({ type: 'eof' }));
        if (ends.done) closeWs(1000);
      } else if (options.linger === undefined) {
        closeWs(1000);
      } else {
        ends.localEnded();
        ends.remoteEnded();
        options.onNote?.(
          `the TCP side sent EOF; the WebSocket peer speaks plain binary frames, which cannot carry a half-close: closing after ${options.linger} ms without data`,
        );
        armLinger();
      }
    });
    socket.on('error', () => first('error'));
    socket.once('close', (hadError?: boolean) => {
      if (hadError) first('error');
      else first('socket');
      if (hadError) closeWs(1011, 'connection reset');
      else if (!options.halfClose || ends.done) closeWs(1000);
      else if (!ends.done) {
        // Closed without an EOF we could forward first (e.g. destroyed): nothing more will come from here.
        if (ends.localEnded() && ws.readyState === ws.OPEN) ws.send(formatControlMessage({ type: 'eof' }));
        closeWs(1000);
      }
      closedOne();
    });

    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      const bytes = toBuffer(data);
      if (options.halfClose && !isBinary) {
        let m;
        try {
          m = parseControlMessage(bytes);
        } catch {
          first('error');
          closeWs(1002, 'bad control message');
          socket.destroy();
          return;
        }
        if (m.type === 'eof') {
          if (ends.remoteEnded()) socket.end();
          if (ends.done) closeWs(1000);
        }
        return;
      }
      if (!ends.remoteOpen && options.halfClose) {
        first('error');
        closeWs(1002, 'data after eof');
        socket.destroy();
        return;
      }
      fromWs += bytes.length;
      options.onData?.('websocket', bytes);
      armLinger();
      if (socket.writable && !socket.write(bytes)) ws.pause();
    });
    ws.on('error', () => first('error'));
    ws.once('close', (code: number) => {
      wsCloseCode = code;
      first(code === 1000 || code === 1005 ? 'websocket' : 'error');
      clearTimeout(linger);
      if (socket.destroyed) return closedOne();
      if (code === 1000 || code === 1005) {
        // Flush what is written, then let go: nothing can be carried back any more.
        socket.end();
        socket.once('finish', () => socket.destroy());
        if (socket.writableFinished) socket.destroy();
      } else {
        socket.destroy();
      }
      closedOne();
    });
  });
}

/** Small helpers for talking to an open `ws` WebSocket in tests. */
import type WebSocket from 'ws';

/** Sends `text` and resolves with the next message as text (rejects on an error, or after `ms`; the error listener stays, so a late error is not unhandled). */
export function echoOnce(ws: WebSocket, text: string, ms = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no echo within ${ms} ms`)), ms);
    const onError = (e: Error): void => {
      clearTimeout(timer);
      reject(e);
    };
    ws.once('error', onError);
    ws.once('message', (data) => {
      clearTimeout(timer);
      resolve(String(data));
    });
    ws.send(text);
  });
}

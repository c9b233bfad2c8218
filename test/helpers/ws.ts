/** Small helpers for talking to an open `ws` WebSocket in tests. */
import type WebSocket from 'ws';

/** Sends `text` and resolves with the next message as text (rejects after `ms`). */
export function echoOnce(ws: WebSocket, text: string, ms = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no echo within ${ms} ms`)), ms);
    ws.once('message', (data) => {
      clearTimeout(timer);
      resolve(String(data));
    });
    ws.send(text);
  });
}

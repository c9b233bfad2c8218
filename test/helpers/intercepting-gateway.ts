/**
 * A scripted stand-in for a TLS-inspecting gateway that fails its own handshake with the server, as McAfee Web
 * Gateway does: it grants CONNECT with `HTTP/1.0 200 Connection established`, then answers the client's
 * ClientHello not with a ServerHello but in plain HTTP, `HTTP/1.0 500 handshakefailed` with its Via, and closes.
 * The real product cannot run here; its bytes are reproduced from a captured exchange (the seed's case).
 */
import net from 'node:net';

export interface ScriptedGateway {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export const GATEWAY_VIA = '1.0 10.0.0.1 (McAfee Web Gateway 7.8.2.8.0.27489)';

export async function startInterceptingGateway(): Promise<ScriptedGateway> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let state: 'connect' | 'hello' = 'connect';
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      if (state === 'connect') {
        head += chunk.toString('latin1');
        if (head.length > 16 * 1024) return socket.destroy();
        if (!head.includes('\r\n\r\n')) return;
        state = 'hello';
        socket.write('HTTP/1.0 200 Connection established\r\n\r\n');
        return;
      }
      // Anything now is the ClientHello (a TLS record starts with 0x16): answer it in plain HTTP.
      const body =
        '<html><body><h1>500 handshakefailed</h1><p>The gateway could not complete the TLS handshake with the server.</p></body></html>';
      socket.end(
        `HTTP/1.0 500 handshakefailed\r\nVia: ${GATEWAY_VIA}\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

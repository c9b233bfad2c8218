/**
 * `npm run demo:game`: the Territory TCP game server and `wsvia bridge --web` in front of it, on loopback. Open the
 * printed URL in two browser tabs (or also `nc 127.0.0.1 GAMEPORT`) and play.
 */
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startBridge } from '../../src/bridge/server.js';
import { startGameServer } from './game-server.js';

// dist/examples/tcp-game/demo.js -> examples/tcp-game/web (the page is not compiled).
export const WEB_DIR = fileURLToPath(new URL('../../../examples/tcp-game/web/', import.meta.url));

export async function startDemo(bridgePort = 0) {
  const game = await startGameServer(0);
  const gamePort = (game.address() as AddressInfo).port;
  const bridge = await startBridge({
    port: bridgePort,
    target: { host: '127.0.0.1', port: gamePort },
    web: WEB_DIR,
  });
  return {
    url: `http://127.0.0.1:${bridge.port}/`,
    gamePort,
    bridge,
    close: async () => {
      await bridge.close();
      await new Promise((r) => game.close(r));
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = process.argv[2] === undefined ? 8088 : Number(process.argv[2]);
  const demo = await startDemo(port);
  process.stdout.write(
    `Territory (a TCP line-protocol game) on 127.0.0.1:${demo.gamePort}\n` +
      `wsvia bridge serving the page and the WebSocket on ${demo.bridge.url}\n\n` +
      `  play: ${demo.url}   (open it in two tabs; Ctrl-C stops)\n`,
  );
  const stop = (): void => {
    demo.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

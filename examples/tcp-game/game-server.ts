/**
 * Territory, a tiny multiplayer TCP game with a line protocol (the kind of server the bridge brings to browsers).
 * Players claim cells of a 5x5 board; a claimed cell stays claimed; when the board is full, most cells wins.
 *
 *   client: HELLO <name>            server: WELCOME <name> <size>, then CELL lines for cells already claimed
 *   client: MOVE <row> <col>        server (to all): CELL <row> <col> <name>
 *                                   server (to all): JOIN <name> / LEAVE <name> / OVER <winner> <cells>
 *                                   server (to one): ERROR <why>
 */
import net from 'node:net';

export const SIZE = 5;

export function startGameServer(port = 0, host = '127.0.0.1'): Promise<net.Server> {
  const board = new Map<string, string>(); // "r c" -> name
  const players = new Map<net.Socket, string>();
  const broadcast = (line: string): void => {
    for (const s of players.keys()) s.write(`${line}\n`);
  };
  const server = net.createServer((socket) => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('close', () => {
      const name = players.get(socket);
      players.delete(socket);
      if (name) broadcast(`LEAVE ${name}`);
    });
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > 4096) return socket.destroy(); // a line protocol has short lines
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const [cmd, ...args] = buffer.slice(0, nl).trim().split(/\s+/);
        buffer = buffer.slice(nl + 1);
        const name = players.get(socket);
        if (cmd === 'HELLO' && !name && /^\w{1,16}$/.test(args[0] ?? '')) {
          players.set(socket, args[0] as string);
          socket.write(`WELCOME ${args[0]} ${SIZE}\n`);
          for (const [cell, owner] of board) socket.write(`CELL ${cell} ${owner}\n`);
          broadcast(`JOIN ${args[0]}`);
        } else if (cmd === 'MOVE' && name) {
          const [r, c] = args.map(Number) as [number, number];
          const key = `${r} ${c}`;
          if (!(r >= 0 && r < SIZE && c >= 0 && c < SIZE)) socket.write('ERROR off the board\n');
          else if (board.has(key)) socket.write(`ERROR taken by ${board.get(key)}\n`);
          else {
            board.set(key, name);
            broadcast(`CELL ${key} ${name}`);
            if (board.size === SIZE * SIZE) {
              const counts = new Map<string, number>();
              for (const owner of board.values()) counts.set(owner, (counts.get(owner) ?? 0) + 1);
              const [winner, cells] = [...counts].sort((a, b) => b[1] - a[1])[0] as [string, number];
              broadcast(`OVER ${winner} ${cells}`);
              board.clear();
            }
          }
        } else socket.write('ERROR say HELLO <name> first, then MOVE <row> <col>\n');
      }
    });
  });
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}

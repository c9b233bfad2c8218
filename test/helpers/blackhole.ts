/**
 * A listener whose accept queue is full: the kernel answers no further SYN, so a TCP connect to it hangs as it
 * would towards a firewalled host. Node's servers always accept, so a python3 socket with listen(0) that never
 * accepts holds the port, and one connection fills its queue.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

export interface Blackhole {
  readonly port: number;
  stop(): void;
}

export async function startBlackhole(): Promise<Blackhole> {
  const script =
    'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(120)';
  const py: ChildProcess = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    py.once('error', reject);
    py.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });
  const filler = net.connect({ host: '127.0.0.1', port });
  filler.on('error', () => {});
  await new Promise((r) => filler.once('connect', r));
  return {
    port,
    stop: () => {
      filler.destroy();
      py.kill('SIGKILL');
    },
  };
}

// Experiment (not used by wsvia): a bare relay with data events vs net onread into a per-socket reused buffer.
// Usage: node bench/onread-drive.mjs data|onread  (1 GiB downloaded through the relay; prints relay CPU seconds).
import net from 'node:net';
const [mode, targetPort] = process.argv.slice(2);
function onread(nread, b) {
  const peer = this.peer;
  const view = b.subarray(0, nread);
  if (peer.writableLength > 0) return peer.write(Buffer.from(view));
  const ok = peer.write(view, this.written);
  if (peer.writableLength > 0) {
    // An async write still references our buffer: stop reading into it until that write completes.
    this.held = true;
    return false;
  }
  return ok;
}
const srv = net.createServer({ noDelay: true, allowHalfOpen: true }, (c) => {
  c.pause();
  const opts = { host: '127.0.0.1', port: Number(targetPort), allowHalfOpen: true, noDelay: true };
  if (mode === 'onread') opts.onread = { buffer: Buffer.allocUnsafe(64 * 1024), callback: onread };
  const u = net.connect(opts);
  u.peer = c;
  c.peer = u;
  u.written = () => {
    if (u.held) {
      u.held = false;
      u.resume();
    }
  };
  c.on('data', (d) => {
    if (!u.write(d)) c.pause();
  });
  u.on('drain', () => c.resume());
  if (mode === 'onread') {
    c.on('drain', () => u.resume());
  } else {
    u.on('data', (d) => {
      if (!c.write(d)) u.pause();
    });
    c.on('drain', () => u.resume());
  }
  u.on('connect', () => {
    c.resume();
    u.resume();
  });
  c.on('end', () => u.end());
  u.on('end', () => c.end());
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
});
srv.listen(0, '127.0.0.1', () => process.stdout.write(srv.address().port + '\n'));

// The browser half of Territory: one WebSocket to the bridge (same origin), carrying the game's TCP bytes in
// binary frames (websockify's "binary" subprotocol). Lines are split here, as any TCP client would.
const SIZE = 5;
const board = document.getElementById('board');
const status = document.getElementById('status');
const log = document.getElementById('log');
const cells = [];
let me = '';
let ws;

for (let r = 0; r < SIZE; r++) {
  for (let c = 0; c < SIZE; c++) {
    const b = document.createElement('button');
    b.id = `cell-${r}-${c}`;
    b.disabled = true;
    b.textContent = '·';
    b.addEventListener('click', () => send(`MOVE ${r} ${c}`));
    board.appendChild(b);
    cells.push(b);
  }
}

function send(line) {
  ws.send(new TextEncoder().encode(`${line}\n`));
}

function onLine(line) {
  log.textContent += `${line}\n`;
  const [cmd, ...args] = line.split(' ');
  if (cmd === 'WELCOME') {
    status.textContent = `playing as ${args[0]}`;
    for (const b of cells) b.disabled = false;
  } else if (cmd === 'CELL') {
    const b = document.getElementById(`cell-${args[0]}-${args[1]}`);
    b.textContent = args[2];
    b.className = args[2] === me ? 'mine' : 'theirs';
    b.disabled = true;
  } else if (cmd === 'OVER') {
    status.textContent = `game over: ${args[0]} wins with ${args[1]} cells; a new board starts`;
    for (const b of cells) {
      b.textContent = '·';
      b.className = '';
      b.disabled = false;
    }
  }
}

document.getElementById('join').addEventListener('submit', (e) => {
  e.preventDefault();
  me = document.getElementById('name').value;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  ws = new WebSocket(`${scheme}://${location.host}/`, ['binary']);
  ws.binaryType = 'arraybuffer';
  const decoder = new TextDecoder();
  let pending = '';
  ws.onopen = () => {
    status.textContent = 'connected';
    send(`HELLO ${me}`);
  };
  ws.onmessage = (m) => {
    pending += decoder.decode(m.data, { stream: true });
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  };
  ws.onclose = (e) => {
    status.textContent = `disconnected (code ${e.code})`;
    for (const b of cells) b.disabled = true;
  };
});

/*
 * wsvia_splice: a zero-copy relay for raw TCP tunnels (Linux). JavaScript hands over two connected TCP sockets
 * (their fds, which this addon dup()s; the JavaScript handles are then closed, which sends nothing while a dup is
 * open) and one relay thread moves the bytes with splice(2): socket -> pipe -> socket, never through user space.
 *
 *   relay(fdA, fdB, counts, callback) -> id   counts: a Float64Array(2) kept up to date with [aToB, bToA]
 *   cut(id)                                    resets both sides (idle and lifetime sweeps, drain)
 *
 * Per direction: a pipe (made when the first byte comes), splice in until EAGAIN, splice out until EAGAIN. A read
 * of 0 (FIN) becomes shutdown(SHUT_WR) on the other socket once the pipe is drained (half-close). A reset or error
 * on one side resets the other (SO_LINGER 0 then close: the peer sees an RST, never a FIN for a truncated stream).
 * When both directions are done, every fd is closed and callback({ bytesAtoB, bytesBtoA, end, first, firstReset })
 * runs on the JavaScript thread: end is 'fin' | 'reset' | 'error' | 'cut', first the side ('a' | 'b') whose FIN or
 * reset came first (or '' for a cut). Every fd is closed on every path; the thread stops when the addon unloads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dial.h"

enum { END_FIN, END_RESET, END_ERROR, END_CUT };
static const char *const END_NAMES[] = {"fin", "reset", "error", "cut"};

/* Rounds of splice per direction before other relays get a turn (each round moves up to a pipe's worth). */
#define BUDGET 16
/* Bytes a direction's pipe holds (the default is 64 KiB). */
#define PIPE_SIZE (256 * 1024)
/* Empty pipes kept for reuse: a pipe is held only while bytes are in flight, so idle tunnels cost no pipe fds. */
#define POOL_MAX 64
#define SLOT_BITS 20
/* A WebSocket payload with at least this much still to come is spliced; less is read into the direction's buffer. */
#define WS_SPLICE_MIN (16 * 1024)
/* The per-direction buffer of a WebSocket relay, allocated only while bytes are in flight. */
#define WS_BUF (16 * 1024)

enum { WHY_NONE, WHY_CONTROL, WHY_BROKEN, WHY_HANGUP, WHY_ERROR, WHY_RELEASE };
static const char *const WHY_NAMES[] = {"", "control", "broken", "hangup", "error", "release"};
#define MAX_SLOTS (1u << SLOT_BITS)

typedef struct relay relay_t;

typedef struct {
  relay_t *r;
  int side; /* 0: a, 1: b */
} endpoint_t;

/* One direction of a WebSocket relay: the frame scanner and the bytes read but not yet written. */
typedef struct {
  uint8_t *buf;       /* NULL while nothing is in flight */
  size_t len;         /* bytes in buf */
  size_t off;         /* of them, written */
  size_t scanned;     /* of them, scanned (off <= scanned <= len); only scanned bytes are written */
  uint64_t remaining; /* payload bytes still to come of the frame at `scanned` (0: a header comes next) */
} wsdir_t;

typedef struct {
  int pipe[2];     /* -1 until the first byte */
  size_t inpipe;   /* bytes in the pipe */
  int eof;         /* the source sent its FIN */
  int done;        /* FIN passed on, pipe drained and closed */
  uint64_t bytes;  /* bytes written to the destination */
} dir_t;

struct relay {
  uint32_t slot;
  uint32_t gen;
  int fd[2];
  int readable[2]; /* an event said fd[s] may have bytes or a FIN; cleared when a read finds none */
  int out[2];      /* fd[s] is watched for writability: only once a write to it found its buffer full */
  endpoint_t ep[2];
  dir_t dir[2]; /* dir[0]: a -> b, dir[1]: b -> a */
  int finished;
  int queued; /* on the ready list (its budget ran out before EAGAIN) */
  int end;
  int ws;              /* a WebSocket relay (wsRelay): handed back instead of finished */
  int why;             /* WHY_*: why a WebSocket relay was handed back */
  int err[2];          /* an errno a syscall returned on fd[s] (the error is consumed by then) */
  wsdir_t wsd[2];      /* wsd[0]: a -> b, wsd[1]: b -> a */
  uint8_t *back[2];    /* at handback: the unwritten bytes per direction, and their length */
  size_t backlen[2];
  size_t backscanned[2];
  int first_side; /* -1 until a FIN or reset */
  int first_reset;
  double *counts; /* JavaScript's Float64Array(2), kept alive by counts_ref */
  napi_ref counts_ref;
  napi_ref callback;
  relay_t *next; /* dead or ready list */
};

typedef struct cmd {
  int stop;
  int release;
  double id;
  struct cmd *next;
} cmd_t;

typedef struct {
  int epfd;
  int evfd;
  int started;
  pthread_t thread;
  pthread_mutex_t mu;
  /* Held by the relay thread while it handles a batch of events, and by JavaScript while it adds a relay's two fds
     to epoll: an event on the first fd cannot hand a WebSocket relay back (removing its fds from epoll, giving them
     to JavaScript) before the second is added, which would then stay registered for a freed relay. */
  pthread_mutex_t reg;
  cmd_t *cmds;
  relay_t **table; /* by slot, under mu */
  uint32_t *gens;
  uint32_t cap;
  uint32_t *free_slots;
  uint32_t nfree;
  uint32_t used;
  int pool[POOL_MAX][2]; /* relay thread only */
  int npool;
  napi_threadsafe_function tsfn;
  uint32_t active; /* relays whose callback is still to come (JavaScript thread only) */
} inst_t;

static void store_count(relay_t *r, int d) {
  double v = (double)r->dir[d].bytes;
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  __atomic_store_n((uint64_t *)&r->counts[d], bits, __ATOMIC_RELAXED);
}

static void note_first(relay_t *r, int side, int reset) {
  if (r->first_side >= 0) return;
  r->first_side = side;
  r->first_reset = reset;
}

static int take_pipe(inst_t *inst, dir_t *d) {
  if (inst->npool > 0) {
    inst->npool--;
    d->pipe[0] = inst->pool[inst->npool][0];
    d->pipe[1] = inst->pool[inst->npool][1];
    return 0;
  }
  if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0) return -1;
  /* A larger pipe moves more per splice; refused past the user's pipe budget, the default stays. */
  fcntl(d->pipe[1], F_SETPIPE_SZ, PIPE_SIZE);
  return 0;
}

/* Gives d's pipe back: to the pool when empty, closed otherwise (bytes of a relay that ended abnormally). */
static void close_pipes(inst_t *inst, dir_t *d) {
  if (d->pipe[0] < 0) return;
  if (d->inpipe == 0 && inst->npool < POOL_MAX) {
    inst->pool[inst->npool][0] = d->pipe[0];
    inst->pool[inst->npool][1] = d->pipe[1];
    inst->npool++;
  } else {
    close(d->pipe[0]);
    close(d->pipe[1]);
  }
  d->pipe[0] = d->pipe[1] = -1;
  d->inpipe = 0;
}

static void linger0(int fd) {
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

/* The relay leaves the table and goes onto the dead list: its callback runs next on the JavaScript thread. */
static void release_slot(inst_t *inst, relay_t *r, relay_t **dead) {
  pthread_mutex_lock(&inst->mu);
  inst->table[r->slot] = NULL;
  inst->free_slots[inst->nfree++] = r->slot;
  inst->used--;
  pthread_mutex_unlock(&inst->mu);
  r->next = *dead;
  *dead = r;
}

/* Ends the relay: every fd closed (after SO_LINGER 0 on `reset_mask`'s sides), the relay onto the dead list. */
static void finish(inst_t *inst, relay_t *r, int end, int reset_mask, relay_t **dead) {
  if (r->finished) return;
  r->finished = 1;
  r->end = end;
  for (int s = 0; s < 2; s++) {
    epoll_ctl(inst->epfd, EPOLL_CTL_DEL, r->fd[s], NULL);
    if (reset_mask & (1 << s)) linger0(r->fd[s]);
    close(r->fd[s]);
    r->fd[s] = -1;
    close_pipes(inst, &r->dir[s]);
  }
  release_slot(inst, r, dead);
}

/* `side` failed with `err`: the other side is reset. */
static void fail(inst_t *inst, relay_t *r, int side, int err, relay_t **dead) {
  note_first(r, side, 1);
  int reset = err == ECONNRESET || err == EPIPE || err == ECONNABORTED || err == ETIMEDOUT;
  finish(inst, r, reset ? END_RESET : END_ERROR, 1 << (1 - side), dead);
}

/* A write to fd[s] found its buffer full: from now on its writability wakes the relay. A relay is registered without
   EPOLLOUT, which a fresh connection already has: with it, every registration woke this thread for nothing. Returns
   -1 (errno set) when epoll refuses, and the relay must end, or it would wait for a wakeup that never comes. */
static int want_out(inst_t *inst, relay_t *r, int s) {
  if (r->out[s]) return 0;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &r->ep[s]};
  if (epoll_ctl(inst->epfd, EPOLL_CTL_MOD, r->fd[s], &ev) < 0) return -1;
  r->out[s] = 1;
  return 0;
}

/* Moves bytes in direction d until EAGAIN (returns 0) or the budget is spent (returns 1). */
static int pump(inst_t *inst, relay_t *r, int d, relay_t **dead) {
  dir_t *D = &r->dir[d];
  int src = r->fd[d], dst = r->fd[1 - d];
  for (int round = 0; round < BUDGET; round++) {
    if (D->done || r->finished) return 0;
    int progress = 0;
    if (!D->eof && r->readable[d]) {
      if (D->pipe[0] < 0 && take_pipe(inst, D) < 0) {
        finish(inst, r, END_ERROR, 3, dead);
        return 0;
      }
      ssize_t n = splice(src, NULL, D->pipe[1], NULL, 1 << 20, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        D->inpipe += (size_t)n;
        progress = 1;
      } else if (n == 0 && D->inpipe == 0) {
        D->eof = 1;
        note_first(r, d, 0);
        progress = 1;
      } else if (n == 0) {
        /* Not an end yet: once the peer's FIN is in, TCP answers 0 rather than EAGAIN when the pipe is full,
           with bytes still queued on the socket. Only a 0 into an empty pipe is the end of the stream. */
      } else if (errno == EINTR) {
        continue;
      } else if (errno != EAGAIN) {
        fail(inst, r, d, errno, dead);
        return 0;
      } else if (D->inpipe == 0) {
        /* The pipe is empty, so the socket is: wait for its next edge. (With bytes in the pipe, EAGAIN may
           only mean the pipe is full: the socket is tried again once the pipe drains.) */
        r->readable[d] = 0;
      }
    }
    if (D->inpipe > 0) {
      ssize_t n = splice(D->pipe[0], NULL, dst, NULL, D->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        D->inpipe -= (size_t)n;
        D->bytes += (uint64_t)n;
        store_count(r, d);
        progress = 1;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno != EAGAIN || want_out(inst, r, 1 - d) < 0)) {
        fail(inst, r, 1 - d, errno, dead);
        return 0;
      }
    }
    if (D->eof && D->inpipe == 0) {
      /* The FIN is passed on once every byte before it is; a peer already gone shows up as an error later. */
      if (shutdown(dst, SHUT_WR) < 0 && errno != ENOTCONN) {
        fail(inst, r, 1 - d, errno, dead);
        return 0;
      }
      D->done = 1;
      close_pipes(inst, D);
      if (r->dir[1 - d].done) finish(inst, r, END_FIN, 0, dead);
      return 0;
    }
    if (!progress) {
      /* Nothing in flight: the pipe goes back to the pool until the next bytes. */
      if (D->inpipe == 0) close_pipes(inst, D);
      return 0;
    }
  }
  return 1;
}

/* The bytes of direction d not yet written, taken out of its pipe or buffer for JavaScript. Never both hold bytes:
   the buffer reads only once the pipe is empty, and the pipe fills only once the buffer is written. */
static void take_back(inst_t *inst, relay_t *r, int d) {
  dir_t *D = &r->dir[d];
  wsdir_t *W = &r->wsd[d];
  if (D->inpipe > 0) {
    uint8_t *b = malloc(D->inpipe);
    size_t got = 0;
    while (b != NULL && got < D->inpipe) {
      ssize_t n = read(D->pipe[0], b + got, D->inpipe - got);
      if (n > 0)
        got += (size_t)n;
      else if (n < 0 && errno == EINTR)
        continue;
      else
        break;
    }
    D->inpipe -= got;
    /* Bytes that could not be taken out are lost: the destination must not see a truncated stream as whole. */
    if (D->inpipe > 0) r->err[1 - d] = ENOMEM;
    r->back[d] = b;
    r->backlen[d] = got;
    r->backscanned[d] = got;
  } else if (W->buf != NULL && W->len > W->off) {
    memmove(W->buf, W->buf + W->off, W->len - W->off);
    r->back[d] = W->buf;
    r->backlen[d] = W->len - W->off;
    r->backscanned[d] = W->scanned - W->off;
    W->buf = NULL;
  }
  free(W->buf);
  W->buf = NULL;
  close_pipes(inst, D);
}

/* Hands a WebSocket relay back to JavaScript: the fds leave epoll open, the unwritten bytes go with them. */
static void handback(inst_t *inst, relay_t *r, int why, relay_t **dead) {
  if (r->finished) return;
  r->finished = 1;
  r->why = why;
  for (int s = 0; s < 2; s++) epoll_ctl(inst->epfd, EPOLL_CTL_DEL, r->fd[s], NULL);
  for (int d = 0; d < 2; d++) take_back(inst, r, d);
  release_slot(inst, r, dead);
}

/* Frees a relay that will reach no callback; a handed-back WebSocket relay's fds are still open then. */
static void drop(relay_t *r) {
  for (int d = 0; d < 2; d++) {
    free(r->back[d]);
    free(r->wsd[d].buf);
    if (r->ws && r->finished && r->fd[d] >= 0) close(r->fd[d]);
  }
  free(r);
}

/* Follows frame headers over the buffer's unscanned bytes (RFC 6455 §5.2). Returns WHY_NONE, or why to hand back:
   a control frame's header (its first byte is enough) or a length no relay can carry. A header cut by the end of
   the buffer stays unscanned until the rest comes. */
static int ws_scan(wsdir_t *W) {
  while (W->scanned < W->len) {
    size_t avail = W->len - W->scanned;
    if (W->remaining > 0) {
      size_t take = avail < W->remaining ? avail : (size_t)W->remaining;
      W->scanned += take;
      W->remaining -= take;
      continue;
    }
    const uint8_t *h = W->buf + W->scanned;
    if ((h[0] & 0x0f) >= 8) return WHY_CONTROL;
    if (avail < 2) return WHY_NONE;
    unsigned len7 = h[1] & 0x7f;
    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    size_t head = 2 + ext + ((h[1] & 0x80) ? 4 : 0);
    if (avail < head) return WHY_NONE;
    uint64_t length = len7;
    if (ext > 0) {
      length = 0;
      for (size_t i = 0; i < ext; i++) length = (length << 8) | h[2 + i];
    }
    /* JavaScript counts in doubles: past 2^53 - 1 (or with the top bit set, §5.2) the frame is broken. */
    if (length > ((1ULL << 53) - 1)) return WHY_BROKEN;
    W->scanned += head;
    W->remaining = length;
  }
  return WHY_NONE;
}

/* Writes direction d's scanned bytes, then its pipe. Returns -1 when handed back, else whether bytes moved. */
static int ws_out(inst_t *inst, relay_t *r, int d, relay_t **dead) {
  dir_t *D = &r->dir[d];
  wsdir_t *W = &r->wsd[d];
  int dst = r->fd[1 - d];
  ssize_t n = 0;
  if (W->off < W->scanned) {
    do n = send(dst, W->buf + W->off, W->scanned - W->off, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n > 0) W->off += (size_t)n;
  } else if (D->inpipe > 0) {
    do n = splice(D->pipe[0], NULL, dst, NULL, D->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    if (n > 0) D->inpipe -= (size_t)n;
  }
  if (n < 0 && (errno != EAGAIN || want_out(inst, r, 1 - d) < 0)) {
    r->err[1 - d] = errno;
    handback(inst, r, WHY_ERROR, dead);
    return -1;
  }
  if (W->buf != NULL && W->off == W->len) W->off = W->len = W->scanned = 0;
  if (n <= 0) return 0;
  D->bytes += (uint64_t)n;
  store_count(r, d);
  return 1;
}

/* Reads direction d's source: through the pipe while a big payload goes by, else into the buffer, and scans.
   Returns -1 when handed back, else whether bytes moved. */
static int ws_in(inst_t *inst, relay_t *r, int d, relay_t **dead) {
  dir_t *D = &r->dir[d];
  wsdir_t *W = &r->wsd[d];
  int src = r->fd[d];
  ssize_t n;
  int spliced = W->len == 0 && (D->inpipe > 0 || W->remaining >= WS_SPLICE_MIN);
  if (spliced) {
    if (W->remaining == 0) return 0; /* the payload is all in the pipe: the buffer waits until it drains */
    if (D->pipe[0] < 0 && take_pipe(inst, D) < 0) {
      r->err[d] = errno;
      handback(inst, r, WHY_ERROR, dead);
      return -1;
    }
    size_t want = W->remaining < (1u << 20) ? (size_t)W->remaining : (1u << 20);
    do n = splice(src, NULL, D->pipe[1], NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    /* A 0 into a non-empty pipe may be a full pipe with the FIN behind it (see pump): the end only when empty. */
    if (n == 0 && D->inpipe > 0) return 0;
  } else {
    if (D->inpipe > 0) return 0;
    if (W->buf == NULL && (W->buf = malloc(WS_BUF)) == NULL) {
      r->err[d] = ENOMEM;
      handback(inst, r, WHY_ERROR, dead);
      return -1;
    }
    if (W->len == WS_BUF && W->off > 0) {
      memmove(W->buf, W->buf + W->off, W->len - W->off);
      W->len -= W->off;
      W->scanned -= W->off;
      W->off = 0;
    }
    if (W->len == WS_BUF) return 0;
    do n = recv(src, W->buf + W->len, WS_BUF - W->len, 0);
    while (n < 0 && errno == EINTR);
  }
  if (n == 0) {
    /* The FIN is not consumed: JavaScript reads it afresh. */
    handback(inst, r, WHY_HANGUP, dead);
    return -1;
  }
  if (n < 0) {
    if (errno != EAGAIN) {
      r->err[d] = errno;
      handback(inst, r, WHY_ERROR, dead);
      return -1;
    }
    if (D->inpipe == 0) r->readable[d] = 0;
    return 0;
  }
  if (spliced) {
    D->inpipe += (size_t)n;
    W->remaining -= (uint64_t)n;
    return 1;
  }
  W->len += (size_t)n;
  int why = ws_scan(W);
  if (why != WHY_NONE) {
    handback(inst, r, why, dead);
    return -1;
  }
  return 1;
}

/* pump() for a WebSocket relay: out then in, until neither moves (returns 0) or the budget is spent (returns 1). */
static int ws_pump(inst_t *inst, relay_t *r, int d, relay_t **dead) {
  dir_t *D = &r->dir[d];
  wsdir_t *W = &r->wsd[d];
  for (int round = 0; round < BUDGET; round++) {
    if (r->finished) return 0;
    int out = ws_out(inst, r, d, dead);
    if (out < 0) return 0;
    int in = r->readable[d] ? ws_in(inst, r, d, dead) : 0;
    if (in < 0) return 0;
    if (in > 0 && out == 0) out = ws_out(inst, r, d, dead);
    if (out < 0) return 0;
    if (in == 0 && out == 0) {
      /* Nothing in flight: pipe and buffer go until the next bytes, so an idle WebSocket holds neither. */
      if (D->inpipe == 0) close_pipes(inst, D);
      if (W->buf != NULL && W->len == 0) {
        free(W->buf);
        W->buf = NULL;
      }
      return 0;
    }
  }
  return 1;
}

/* Pumps both directions; a relay whose budget ran out goes on the ready list, to be pumped again without an edge. */
static void service(inst_t *inst, relay_t *r, relay_t **dead, relay_t **ready) {
  int (*move)(inst_t *, relay_t *, int, relay_t **) = r->ws ? ws_pump : pump;
  int again = move(inst, r, 0, dead);
  again |= move(inst, r, 1, dead);
  if (again && !r->finished && !r->queued) {
    r->queued = 1;
    r->next = *ready;
    *ready = r;
  }
}

static int sock_error(int fd) {
  int e = 0;
  socklen_t len = sizeof e;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0) return errno;
  return e;
}

static relay_t *lookup(inst_t *inst, double id) {
  if (!(id >= 0)) return NULL;
  uint64_t v = (uint64_t)id;
  uint32_t slot = (uint32_t)(v & (MAX_SLOTS - 1));
  uint32_t gen = (uint32_t)(v >> SLOT_BITS);
  relay_t *r = NULL;
  pthread_mutex_lock(&inst->mu);
  if (slot < inst->cap && inst->table[slot] != NULL && inst->gens[slot] == gen) r = inst->table[slot];
  pthread_mutex_unlock(&inst->mu);
  return r;
}

/* Returns 1 when the thread is to stop. */
static int run_commands(inst_t *inst, relay_t **dead) {
  uint64_t v;
  while (read(inst->evfd, &v, sizeof v) < 0 && errno == EINTR) {
  }
  pthread_mutex_lock(&inst->mu);
  cmd_t *c = inst->cmds;
  inst->cmds = NULL;
  pthread_mutex_unlock(&inst->mu);
  int stop = 0;
  while (c != NULL) {
    cmd_t *next = c->next;
    if (c->stop) {
      stop = 1;
    } else {
      relay_t *r = lookup(inst, c->id);
      if (r != NULL && !r->finished && r->ws) handback(inst, r, WHY_RELEASE, dead);
      else if (r != NULL && !r->finished && !c->release) finish(inst, r, END_CUT, 3, dead);
    }
    free(c);
    c = next;
  }
  return stop;
}

static void *relay_thread(void *arg) {
  inst_t *inst = arg;
  struct epoll_event evs[128];
  relay_t *ready = NULL;
  for (;;) {
    int n = epoll_wait(inst->epfd, evs, 128, ready != NULL ? 0 : -1);
    if (n < 0 && errno != EINTR) break;
    pthread_mutex_lock(&inst->reg);
    relay_t *dead = NULL;
    int stop = 0;
    relay_t *again = ready;
    ready = NULL;
    for (relay_t *r = again; r != NULL;) {
      relay_t *next = r->next;
      r->queued = 0;
      r->next = NULL;
      service(inst, r, &dead, &ready);
      r = next;
    }
    for (int i = 0; i < n; i++) {
      endpoint_t *ep = evs[i].data.ptr;
      if (ep == NULL) {
        stop |= run_commands(inst, &dead);
        continue;
      }
      relay_t *r = ep->r;
      if (r->finished) continue;
      if (r->ws && (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        /* An end or an error is JavaScript's to handle: neither read nor consumed here. */
        handback(inst, r, WHY_HANGUP, &dead);
        continue;
      }
      if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) r->readable[ep->side] = 1;
      if (evs[i].events & EPOLLERR) {
        int e = sock_error(r->fd[ep->side]);
        if (e != 0) {
          fail(inst, r, ep->side, e, &dead);
          continue;
        }
      }
      if (!r->queued) service(inst, r, &dead, &ready);
    }
    /* A relay on the ready list may have finished since: drop it from the list. */
    relay_t **link = &ready;
    while (*link != NULL) {
      if ((*link)->finished) {
        relay_t *gone = *link;
        *link = gone->next;
        gone->queued = 0;
      } else {
        link = &(*link)->next;
      }
    }
    pthread_mutex_unlock(&inst->reg);
    /* The JavaScript thread owns a finished relay from here on (call_js frees it). */
    while (dead != NULL) {
      relay_t *next = dead->next;
      if (napi_call_threadsafe_function(inst->tsfn, dead, napi_tsfn_nonblocking) != napi_ok) drop(dead);
      dead = next;
    }
    if (stop) break;
  }
  return NULL;
}

static void set_number(napi_env env, napi_value obj, const char *key, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, obj, key, x);
}

static void set_string(napi_env env, napi_value obj, const char *key, const char *v) {
  napi_value x;
  napi_create_string_utf8(env, v, NAPI_AUTO_LENGTH, &x);
  napi_set_named_property(env, obj, key, x);
}

/* What a WebSocket relay hands back: its fds, and per direction the unwritten bytes and the scanner's state. */
static void handback_result(napi_env env, relay_t *r, napi_value result) {
  static const char *const DIR[] = {"AtoB", "BtoA"};
  char key[32];
  set_number(env, result, "fdA", r->fd[0]);
  set_number(env, result, "fdB", r->fd[1]);
  set_string(env, result, "why", WHY_NAMES[r->why]);
  set_number(env, result, "errA", r->err[0]);
  set_number(env, result, "errB", r->err[1]);
  for (int d = 0; d < 2; d++) {
    napi_value buf;
    napi_create_buffer_copy(env, r->backlen[d], r->back[d] != NULL ? r->back[d] : (const uint8_t *)"", NULL, &buf);
    snprintf(key, sizeof key, "data%s", DIR[d]);
    napi_set_named_property(env, result, key, buf);
    snprintf(key, sizeof key, "scanned%s", DIR[d]);
    set_number(env, result, key, (double)r->backscanned[d]);
    snprintf(key, sizeof key, "remaining%s", DIR[d]);
    set_number(env, result, key, (double)r->wsd[d].remaining);
  }
  /* JavaScript owns the fds now. */
  r->fd[0] = r->fd[1] = -1;
}

static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  inst_t *inst = context;
  relay_t *r = data;
  if (env != NULL) {
    napi_value result, cb, undef;
    napi_create_object(env, &result);
    if (r->ws) {
      napi_value yes;
      napi_get_boolean(env, true, &yes);
      napi_set_named_property(env, result, "handback", yes);
      handback_result(env, r, result);
    }
    set_number(env, result, "bytesAtoB", (double)r->dir[0].bytes);
    set_number(env, result, "bytesBtoA", (double)r->dir[1].bytes);
    set_string(env, result, "end", END_NAMES[r->end]);
    set_string(env, result, "first", r->first_side < 0 ? "" : r->first_side == 0 ? "a" : "b");
    napi_value reset;
    napi_get_boolean(env, r->first_reset != 0, &reset);
    napi_set_named_property(env, result, "firstReset", reset);
    napi_get_undefined(env, &undef);
    if (napi_get_reference_value(env, r->callback, &cb) == napi_ok && cb != NULL)
      napi_call_function(env, undef, cb, 1, &result, NULL);
    napi_delete_reference(env, r->callback);
    napi_delete_reference(env, r->counts_ref);
    if (--inst->active == 0) napi_unref_threadsafe_function(env, inst->tsfn);
  }
  drop(r);
}

static void cleanup(void *arg) {
  inst_t *inst = arg;
  if (inst->started) {
    cmd_t *c = calloc(1, sizeof *c);
    if (c != NULL) {
      c->stop = 1;
      pthread_mutex_lock(&inst->mu);
      c->next = inst->cmds;
      inst->cmds = c;
      pthread_mutex_unlock(&inst->mu);
    }
    uint64_t one = 1;
    if (write(inst->evfd, &one, sizeof one) < 0) {
    }
    pthread_join(inst->thread, NULL);
    for (uint32_t i = 0; i < inst->cap; i++) {
      relay_t *r = inst->table[i];
      if (r == NULL) continue;
      for (int s = 0; s < 2; s++) {
        close(r->fd[s]);
        r->fd[s] = -1;
        close_pipes(inst, &r->dir[s]);
      }
      drop(r);
    }
    for (int i = 0; i < inst->npool; i++) {
      close(inst->pool[i][0]);
      close(inst->pool[i][1]);
    }
    close(inst->epfd);
    close(inst->evfd);
  }
  for (cmd_t *c = inst->cmds; c != NULL;) {
    cmd_t *next = c->next;
    free(c);
    c = next;
  }
  free(inst->table);
  free(inst->gens);
  free(inst->free_slots);
  pthread_mutex_destroy(&inst->mu);
  pthread_mutex_destroy(&inst->reg);
  free(inst);
}

static napi_value throw_error(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

/* Starts the relay thread on first use: a process that never splices has no thread. */
static int start(napi_env env, inst_t *inst) {
  if (inst->started) return 0;
  inst->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (inst->epfd < 0) return -1;
  inst->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (inst->evfd < 0) {
    close(inst->epfd);
    return -1;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  napi_value name;
  napi_create_string_utf8(env, "wsvia_splice", NAPI_AUTO_LENGTH, &name);
  if (epoll_ctl(inst->epfd, EPOLL_CTL_ADD, inst->evfd, &ev) < 0 ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, inst, call_js, &inst->tsfn) !=
          napi_ok) {
    close(inst->epfd);
    close(inst->evfd);
    return -1;
  }
  napi_unref_threadsafe_function(env, inst->tsfn);
  if (pthread_create(&inst->thread, NULL, relay_thread, inst) != 0) {
    napi_release_threadsafe_function(inst->tsfn, napi_tsfn_abort);
    close(inst->epfd);
    close(inst->evfd);
    return -1;
  }
  inst->started = 1;
  /* Registered after the threadsafe function, so it runs before Node closes it: the thread stops first. */
  napi_add_env_cleanup_hook(env, cleanup, inst);
  return 0;
}

/* A slot for r under mu, or -1 when the table is full. */
static int take_slot(inst_t *inst, relay_t *r) {
  if (inst->nfree == 0) {
    if (inst->cap >= MAX_SLOTS) return -1;
    uint32_t cap = inst->cap == 0 ? 256 : inst->cap * 2;
    relay_t **table = realloc(inst->table, cap * sizeof *table);
    if (table == NULL) return -1;
    inst->table = table;
    uint32_t *gens = realloc(inst->gens, cap * sizeof *gens);
    if (gens == NULL) return -1;
    inst->gens = gens;
    uint32_t *fs = realloc(inst->free_slots, cap * sizeof *fs);
    if (fs == NULL) return -1;
    inst->free_slots = fs;
    for (uint32_t i = cap; i > inst->cap; i--) {
      inst->table[i - 1] = NULL;
      inst->gens[i - 1] = 0;
      inst->free_slots[inst->nfree++] = i - 1;
    }
    inst->cap = cap;
  }
  r->slot = inst->free_slots[--inst->nfree];
  r->gen = ++inst->gens[r->slot] & ((1u << 31) - 1);
  inst->gens[r->slot] = r->gen;
  inst->table[r->slot] = r;
  inst->used++;
  return 0;
}

static int stream_socket(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

/* Starts a relay of fds[0] and fds[1] (dup()ed here), spliced or (ws) a WebSocket relay. */
static napi_value add_relay(napi_env env, inst_t *inst, const int32_t fds[2], napi_value counts, napi_value callback,
                            int ws, const double remaining[2]) {
  napi_typedarray_type ta_type;
  size_t ta_len;
  void *ta_data;
  napi_valuetype cb_type;
  if (napi_get_typedarray_info(env, counts, &ta_type, &ta_len, &ta_data, NULL, NULL) != napi_ok ||
      ta_type != napi_float64_array || ta_len < 2 || napi_typeof(env, callback, &cb_type) != napi_ok ||
      cb_type != napi_function)
    return throw_error(env, "ERR_INVALID_ARG_TYPE", "counts: Float64Array(2), callback: function");
  for (int s = 0; s < 2; s++)
    if (fds[s] < 0 || !stream_socket(fds[s]))
      return throw_error(env, "ERR_INVALID_ARG_VALUE", "a relay takes two stream sockets");
  if (start(env, inst) < 0) return throw_error(env, "ERR_SPLICE_START", strerror(errno));

  relay_t *r = calloc(1, sizeof *r);
  if (r == NULL) return throw_error(env, "ERR_SPLICE_MEMORY", "out of memory");
  r->first_side = -1;
  r->ws = ws;
  r->counts = ta_data;
  r->counts[0] = 0;
  r->counts[1] = 0;
  for (int s = 0; s < 2; s++) {
    r->dir[s].pipe[0] = r->dir[s].pipe[1] = -1;
    r->ep[s].r = r;
    r->ep[s].side = s;
    r->fd[s] = -1;
    r->wsd[s].remaining = remaining[s] > 0 ? (uint64_t)remaining[s] : 0;
  }
  for (int s = 0; s < 2; s++) {
    r->fd[s] = fcntl(fds[s], F_DUPFD_CLOEXEC, 3);
    if (r->fd[s] < 0 || fcntl(r->fd[s], F_SETFL, fcntl(r->fd[s], F_GETFL) | O_NONBLOCK) < 0) {
      int e = errno;
      if (r->fd[0] >= 0) close(r->fd[0]);
      if (r->fd[1] >= 0) close(r->fd[1]);
      free(r);
      return throw_error(env, "ERR_SPLICE_DUP", strerror(e));
    }
  }
  napi_create_reference(env, counts, 1, &r->counts_ref);
  napi_create_reference(env, callback, 1, &r->callback);
  pthread_mutex_lock(&inst->mu);
  int ok = take_slot(inst, r);
  pthread_mutex_unlock(&inst->mu);
  if (ok < 0) {
    close(r->fd[0]);
    close(r->fd[1]);
    napi_delete_reference(env, r->counts_ref);
    napi_delete_reference(env, r->callback);
    free(r);
    return throw_error(env, "ERR_SPLICE_FULL", "too many spliced relays");
  }
  double id = (double)(((uint64_t)r->gen << SLOT_BITS) | r->slot);
  if (inst->active++ == 0) napi_ref_threadsafe_function(env, inst->tsfn);
  /* From here the relay thread may run it: edge-triggered, so one event per change. */
  pthread_mutex_lock(&inst->reg);
  for (int s = 0; s < 2; s++) {
    /* Readable and hang-up edges only: writability is asked for once a write finds a buffer full (want_out). */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = &r->ep[s]};
    if (epoll_ctl(inst->epfd, EPOLL_CTL_ADD, r->fd[s], &ev) < 0) {
      /* Not watched: cut it through the thread, which owns it now, so the callback still comes exactly once. */
      cmd_t *c = calloc(1, sizeof *c);
      if (c != NULL) {
        c->id = id;
        c->release = ws;
        pthread_mutex_lock(&inst->mu);
        c->next = inst->cmds;
        inst->cmds = c;
        pthread_mutex_unlock(&inst->mu);
        uint64_t one = 1;
        if (write(inst->evfd, &one, sizeof one) < 0) {
        }
      }
      break;
    }
  }
  pthread_mutex_unlock(&inst->reg);
  napi_value out;
  napi_create_double(env, id, &out);
  return out;
}

static napi_value relay(napi_env env, napi_callback_info info) {
  inst_t *inst;
  napi_get_instance_data(env, (void **)&inst);
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fds[2];
  if (argc < 4 || napi_get_value_int32(env, argv[0], &fds[0]) != napi_ok ||
      napi_get_value_int32(env, argv[1], &fds[1]) != napi_ok)
    return throw_error(env, "ERR_INVALID_ARG_TYPE", "relay(fdA, fdB, counts, callback)");
  const double none[2] = {0, 0};
  return add_relay(env, inst, fds, argv[2], argv[3], 0, none);
}

static napi_value ws_relay(napi_env env, napi_callback_info info) {
  inst_t *inst;
  napi_get_instance_data(env, (void **)&inst);
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fds[2];
  napi_typedarray_type ta_type;
  size_t ta_len;
  void *ta_data;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &fds[0]) != napi_ok ||
      napi_get_value_int32(env, argv[1], &fds[1]) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &ta_type, &ta_len, &ta_data, NULL, NULL) != napi_ok ||
      ta_type != napi_float64_array || ta_len < 2)
    return throw_error(env, "ERR_INVALID_ARG_TYPE", "wsRelay(fdA, fdB, state: Float64Array(2), counts, callback)");
  const double *state = ta_data;
  const double remaining[2] = {state[0], state[1]};
  return add_relay(env, inst, fds, argv[3], argv[4], 1, remaining);
}

/* Queues a command for the relay thread: cut (reset both sides) or release (hand a WebSocket relay back). */
static napi_value command(napi_env env, napi_callback_info info, int release) {
  inst_t *inst;
  napi_get_instance_data(env, (void **)&inst);
  size_t argc = 1;
  napi_value argv[1];
  double id;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_double(env, argv[0], &id) != napi_ok)
    return throw_error(env, "ERR_INVALID_ARG_TYPE", "(id)");
  if (!inst->started) return NULL;
  cmd_t *c = calloc(1, sizeof *c);
  if (c == NULL) return throw_error(env, "ERR_SPLICE_MEMORY", "out of memory");
  c->id = id;
  c->release = release;
  pthread_mutex_lock(&inst->mu);
  c->next = inst->cmds;
  inst->cmds = c;
  pthread_mutex_unlock(&inst->mu);
  uint64_t one = 1;
  if (write(inst->evfd, &one, sizeof one) < 0) {
  }
  return NULL;
}

static napi_value cut(napi_env env, napi_callback_info info) {
  return command(env, info, 0);
}

static napi_value release(napi_env env, napi_callback_info info) {
  return command(env, info, 1);
}

/* Relays open in the thread (for tests: every fd given back once this is 0). */
static napi_value open_count(napi_env env, napi_callback_info info) {
  inst_t *inst;
  napi_get_instance_data(env, (void **)&inst);
  pthread_mutex_lock(&inst->mu);
  uint32_t used = inst->used;
  pthread_mutex_unlock(&inst->mu);
  napi_value out;
  napi_create_uint32(env, used, &out);
  return out;
}

NAPI_MODULE_INIT() {
  inst_t *inst = calloc(1, sizeof *inst);
  if (inst == NULL) return NULL;
  pthread_mutex_init(&inst->mu, NULL);
  pthread_mutex_init(&inst->reg, NULL);
  inst->epfd = inst->evfd = -1;
  napi_set_instance_data(env, inst, NULL, NULL);
  napi_property_descriptor props[] = {
      {"relay", NULL, relay, NULL, NULL, NULL, napi_default, NULL},
      {"cut", NULL, cut, NULL, NULL, NULL, napi_default, NULL},
      {"wsRelay", NULL, ws_relay, NULL, NULL, NULL, napi_default, NULL},
      {"release", NULL, release, NULL, NULL, NULL, napi_default, NULL},
      {"openCount", NULL, open_count, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  dial_define(env, exports);
  return exports;
}

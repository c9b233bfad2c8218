/*
 * The native dialer (issue 15): a CONNECT tunnel's destination connected without a JavaScript socket, so a tunnel
 * the splice relay carries never has one on that side. A non-blocking connect(2), watched by a uv_poll on Node's own
 * loop (no thread hop); its outcome comes back on the JavaScript thread.
 *
 *   dial(address, port, callback) -> handle | -errno
 *       address: a numeric IPv4 or IPv6 address (a scope id allowed): the caller resolved and checked it.
 *       callback(errno, fd): 0 and a connected non-blocking fd, now the caller's (relay() dup()s it; the caller
 *       closes it), or an errno and -1. A connect that fails at once returns -errno and never calls back.
 *   cancelDial(handle)   before the callback: stops the connect and closes the fd; the callback never comes.
 *
 * The poll keeps Node's loop alive while a connect is in progress, as a connecting socket does. Every fd is closed on
 * every path: the outcome (given to JavaScript or closed), a cancel, or the environment's teardown.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "dial.h"

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback; /* NULL once called or cancelled */
  int fd;            /* -1 once handed over or closed */
  int closed;        /* uv_close's callback ran */
  int collected;     /* the JavaScript handle was collected */
} dial_t;

static void free_when_done(dial_t *d) {
  if (d->closed && d->collected) free(d);
}

static void on_closed(uv_handle_t *h) {
  dial_t *d = (dial_t *)h;
  d->closed = 1;
  free_when_done(d);
}

static void on_collected(napi_env env, void *data, void *hint) {
  dial_t *d = data;
  d->collected = 1;
  free_when_done(d);
}

static void cleanup(void *arg);

/* Ends the watch: the poll stops (libuv takes the fd out of its epoll at once), the handle closes, and the fd is
   returned for the caller to hand over or close. */
static int finish(dial_t *d) {
  int fd = d->fd;
  d->fd = -1;
  uv_poll_stop(&d->poll);
  uv_close((uv_handle_t *)&d->poll, on_closed);
  napi_remove_env_cleanup_hook(d->env, cleanup, d);
  return fd;
}

/* The environment goes away with a connect in progress (a worker ends): the fd is closed, nothing is called. */
static void cleanup(void *arg) {
  dial_t *d = arg;
  int fd = d->fd;
  d->fd = -1;
  uv_poll_stop(&d->poll);
  uv_close((uv_handle_t *)&d->poll, on_closed);
  if (fd >= 0) close(fd);
  if (d->callback != NULL) napi_delete_reference(d->env, d->callback);
  d->callback = NULL;
}

static void on_writable(uv_poll_t *p, int status, int events) {
  dial_t *d = (dial_t *)p;
  int err = 0;
  socklen_t len = sizeof err;
  /* libuv says EBADF for any POLLERR: the socket's own error says what the connect met. */
  if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err == 0 && status < 0) err = -status;
  int fd = finish(d);
  if (err != 0) {
    close(fd);
    fd = -1;
  }
  napi_env env = d->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    if (fd >= 0) close(fd);
    return;
  }
  napi_value cb, recv, argv[2];
  napi_get_reference_value(env, d->callback, &cb);
  napi_delete_reference(env, d->callback);
  d->callback = NULL;
  /* napi_make_callback wants an object to call on. */
  napi_get_global(env, &recv);
  napi_create_int32(env, err, &argv[0]);
  napi_create_int32(env, fd, &argv[1]);
  /* A callback with its own scope: promise reactions and ticks run after it, as after any I/O callback. */
  if (napi_make_callback(env, NULL, recv, cb, 2, argv, NULL) == napi_pending_exception) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
  napi_close_handle_scope(env, scope);
}

static napi_value number(napi_env env, int v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

/* address:port as a socket address: inet_pton for the usual forms, getaddrinfo (numeric only, no lookup) for an IPv6
   address with a scope id. Returns its length, or 0 when address is not a numeric address. */
static socklen_t socket_address(const char *address, int port, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    return sizeof *v4;
  }
  if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    return sizeof *v6;
  }
  struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_family = AF_INET6, .ai_socktype = SOCK_STREAM};
  struct addrinfo *ai = NULL;
  if (strchr(address, '%') == NULL || getaddrinfo(address, NULL, &hints, &ai) != 0 || ai == NULL) return 0;
  socklen_t len = 0;
  if (ai->ai_addrlen <= sizeof *out) {
    memcpy(out, ai->ai_addr, ai->ai_addrlen);
    v6->sin6_port = htons((uint16_t)port);
    len = ai->ai_addrlen;
  }
  freeaddrinfo(ai);
  return len;
}

/* A connected or connecting non-blocking TCP socket to address:port, or -errno. */
static int connect_to(const char *address, int port) {
  struct sockaddr_storage sa;
  socklen_t len = socket_address(address, port, &sa);
  if (len == 0) return -EINVAL;
  int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&sa, len) < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

static napi_value dial(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char address[INET6_ADDRSTRLEN + 32];
  size_t alen;
  int32_t port;
  napi_valuetype cbt = napi_undefined;
  if (argc < 3 ||
      napi_get_value_string_utf8(env, argv[0], address, sizeof address, &alen) != napi_ok ||
      alen >= sizeof address - 1 || napi_get_value_int32(env, argv[1], &port) != napi_ok || port < 1 ||
      port > 65535 || napi_typeof(env, argv[2], &cbt) != napi_ok || cbt != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "dial(address, port 1-65535, callback)");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return number(env, -EINVAL);
  int fd = connect_to(address, port);
  if (fd < 0) return number(env, fd);
  dial_t *d = calloc(1, sizeof *d);
  if (d == NULL || uv_poll_init(loop, &d->poll, fd) != 0) {
    free(d);
    close(fd);
    return number(env, -ENOMEM);
  }
  d->env = env;
  d->fd = fd;
  napi_value handle;
  if (uv_poll_start(&d->poll, UV_WRITABLE, on_writable) != 0 ||
      napi_create_reference(env, argv[2], 1, &d->callback) != napi_ok ||
      napi_create_external(env, d, on_collected, NULL, &handle) != napi_ok) {
    /* The external never made: no finalizer will come, so the struct is freed by the close alone. */
    if (d->callback != NULL) napi_delete_reference(env, d->callback);
    d->callback = NULL;
    d->collected = 1;
    close(finish(d));
    return number(env, -ENOMEM);
  }
  napi_add_env_cleanup_hook(env, cleanup, d);
  return handle;
}

static napi_value cancel_dial(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  dial_t *d;
  napi_valuetype t = napi_undefined;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, argv[0], (void **)&d) != napi_ok)
    return NULL;
  if (d->callback == NULL) return NULL;
  napi_delete_reference(env, d->callback);
  d->callback = NULL;
  close(finish(d));
  return NULL;
}

void dial_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"dial", NULL, dial, NULL, NULL, NULL, napi_default, NULL},
      {"cancelDial", NULL, cancel_dial, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

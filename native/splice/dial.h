/* The native dialer (dial.c): defines dial() and cancelDial() on the addon's exports. */
#ifndef WSVIA_DIAL_H
#define WSVIA_DIAL_H
#include <node_api.h>

void dial_define(napi_env env, napi_value exports);

#endif

/*
 * mgr_server.h - sluice-manager's event loop (server.c): serves HTTPS on
 * the bound, non-blocking listening socket lfd until SIGTERM or SIGINT.
 */
#ifndef SLUICE_MGR_SERVER_H
#define SLUICE_MGR_SERVER_H

#include "mgr_int.h"
#include <openssl/ssl.h>

int mgr_server_run(mgr *m, SSL_CTX *ctx, int lfd);

#endif

/*
 * mgr_tls.h - sluice-manager's TLS context and self-signed certificate
 * (tls.c).  Both return NULL/-1 with a message in err.
 */
#ifndef SLUICE_MGR_TLS_H
#define SLUICE_MGR_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/types.h>

/* DIR/manager.crt + DIR/manager.key, made once; owner uid/gid unless -1. */
int mgr_tls_ensure_cert(const char *dir, uid_t uid, gid_t gid, char *cert_path,
                        char *key_path, size_t pathsz, char *err, size_t errsz);
SSL_CTX *mgr_tls_context(const char *cert, const char *key, char *err,
                         size_t errsz);

#endif

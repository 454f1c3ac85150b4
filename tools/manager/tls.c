/*
 * tls.c - sluice-manager's TLS context, and the self-signed certificate
 * made on first start when none is configured.
 *
 * mgr_tls_ensure_cert: STATE/manager/manager.crt and manager.key (EC P-256,
 * SHA-256 signature, 825 days, subjectAltName localhost, the host name,
 * 127.0.0.1 and ::1, serverAuth) written once (key 0600, both through a
 * temporary file and rename), owned by the manager's user.  The SHA-256
 * fingerprint is logged so that administrators can check what their
 * browser shows.
 * mgr_tls_context: TLS 1.2 and 1.3 only, forward-secret AEAD suites for
 * 1.2, no compression, no renegotiation, server cipher preference.
 *
 * SECURITY: runs as root before privileges are dropped (the key may be
 * readable by root only); the key never leaves these files and memory.
 */
#include "mgr_tls.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TLS_CERT_DAYS 825

static void tls_errors(char *err, size_t errsz, const char *what)
{
    unsigned long e = ERR_get_error();
    char tmp[256];

    ERR_error_string_n(e, tmp, sizeof(tmp));
    snprintf(err, errsz, "%s: %s", what, e ? tmp : "failed");
    ERR_clear_error();
}

static int tls_add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ex;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ex == NULL)
        return -1;
    ok = X509_add_ext(x, ex, -1);
    X509_EXTENSION_free(ex);
    return ok ? 0 : -1;
}

/* Writes data to path atomically with mode, owned by uid/gid (-1: keep). */
static int tls_write_pem(const char *path, int mode, uid_t uid, gid_t gid,
                         EVP_PKEY *key, X509 *cert, char *err, size_t errsz)
{
    char tmp[4200];
    int fd, ok;
    FILE *fp;

    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    unlink(tmp);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) < 0) {
        snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    if (uid != (uid_t)-1 && fchown(fd, uid, gid) < 0) {
        snprintf(err, errsz, "chown %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if ((fp = fdopen(fd, "w")) == NULL) {
        snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    ok = key ? PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL)
             : PEM_write_X509(fp, cert);
    if (!ok || fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        tls_errors(err, errsz, tmp);
        fclose(fp);
        unlink(tmp);
        return -1;
    }
    fclose(fp);
    if (rename(tmp, path) < 0) {
        snprintf(err, errsz, "rename %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void tls_log_fingerprint(X509 *x, const char *path)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    char hex[EVP_MAX_MD_SIZE * 3 + 1];

    if (!X509_digest(x, EVP_sha256(), md, &n))
        return;
    for (i = 0; i < n; i++)
        snprintf(hex + 3 * i, 4, "%02X%s", md[i], i + 1 < n ? ":" : "");
    log_info("certificate %s: SHA-256 fingerprint %s", path, hex);
}

int mgr_tls_ensure_cert(const char *dir, uid_t uid, gid_t gid, char *cert_path,
                        char *key_path, size_t pathsz, char *err, size_t errsz)
{
    struct stat st;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    X509_NAME *name;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    char host[256], san[600];
    int rc = -1;

    snprintf(cert_path, pathsz, "%s/manager.crt", dir);
    snprintf(key_path, pathsz, "%s/manager.key", dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    if (uid != (uid_t)-1 && chown(dir, uid, gid) < 0) {
        snprintf(err, errsz, "chown %s: %s", dir, strerror(errno));
        return -1;
    }
    if (stat(cert_path, &st) == 0 && stat(key_path, &st) == 0)
        return 0; /* made before */
    if (gethostname(host, sizeof(host)) < 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    log_info("no certificate configured: generating a self-signed one in %s",
             dir);
    if ((key = EVP_EC_gen("P-256")) == NULL) {
        tls_errors(err, errsz, "EC P-256 key");
        goto out;
    }
    if ((x = X509_new()) == NULL || !X509_set_version(x, 2) ||
        RAND_bytes(serial, sizeof(serial)) != 1) {
        tls_errors(err, errsz, "certificate");
        goto out;
    }
    serial[0] &= 0x7f; /* positive */
    if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
        X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x),
                        (long)TLS_CERT_DAYS * 24 * 3600) == NULL ||
        !X509_set_pubkey(x, key)) {
        tls_errors(err, errsz, "certificate");
        goto out;
    }
    name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                    (const unsigned char *)"sluice", -1, -1,
                                    0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)host, -1, -1, 0) ||
        !X509_set_issuer_name(x, name)) {
        tls_errors(err, errsz, "certificate name");
        goto out;
    }
    if (strcmp(host, "localhost") == 0 || strpbrk(host, ",: ") != NULL)
        snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1");
    else
        snprintf(san, sizeof(san), "DNS:localhost,DNS:%s,IP:127.0.0.1,IP:::1",
                 host);
    if (tls_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        tls_add_ext(x, NID_key_usage, "critical,digitalSignature") < 0 ||
        tls_add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
        tls_add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
        tls_add_ext(x, NID_subject_alt_name, san) < 0) {
        tls_errors(err, errsz, "certificate extensions");
        goto out;
    }
    if (!X509_sign(x, key, EVP_sha256())) {
        tls_errors(err, errsz, "signing the certificate");
        goto out;
    }
    if (tls_write_pem(key_path, 0600, uid, gid, key, NULL, err, errsz) < 0 ||
        tls_write_pem(cert_path, 0644, uid, gid, NULL, x, err, errsz) < 0)
        goto out;
    rc = 0;
out:
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

SSL_CTX *mgr_tls_context(const char *cert, const char *key, char *err,
                         size_t errsz)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        tls_errors(err, errsz, "TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (!SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char what[600];
        snprintf(what, sizeof(what), "certificate %s / key %s", cert, key);
        tls_errors(err, errsz, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    {
        X509 *x = SSL_CTX_get0_certificate(ctx);
        if (x)
            tls_log_fingerprint(x, cert);
    }
    return ctx;
}

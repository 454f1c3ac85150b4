/*
 * mgr_pass.c - argon2id password hashing (see mgr_pass.h).
 *
 * SECURITY: the password never leaves this file except as argon2's
 * encoded hash; verification is libargon2's constant-time comparison.
 */
#include "mgr_pass.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#define MGR_PASS_SALT 16
#define MGR_PASS_HASH 32

int mgr_pass_check(const char *password, char *err, size_t errsz)
{
    size_t n = strlen(password), i;

    if (n < MGR_PASS_MIN_LEN) {
        snprintf(err, errsz, "password too short (at least %d characters)",
                 MGR_PASS_MIN_LEN);
        return -1;
    }
    if (n > MGR_PASS_MAX_LEN) {
        snprintf(err, errsz, "password too long (at most %d bytes)",
                 MGR_PASS_MAX_LEN);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if ((unsigned char)password[i] < 0x20 || password[i] == 0x7f) {
            snprintf(err, errsz, "password contains a control character");
            return -1;
        }
    }
    return 0;
}

int mgr_pass_hash(const char *password, char *out, size_t outsz, char *err,
                  size_t errsz)
{
    unsigned char salt[MGR_PASS_SALT];
    int rc;

    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        snprintf(err, errsz, "random generator failed");
        return -1;
    }
    rc = argon2id_hash_encoded(MGR_PASS_T_COST, MGR_PASS_M_COST,
                               MGR_PASS_PARALLELISM, password, strlen(password),
                               salt, sizeof(salt), MGR_PASS_HASH, out, outsz);
    OPENSSL_cleanse(salt, sizeof(salt));
    if (rc != ARGON2_OK) {
        snprintf(err, errsz, "argon2id: %s", argon2_error_message(rc));
        return -1;
    }
    return 0;
}

int mgr_pass_verify(const char *encoded, const char *password)
{
    if (encoded == NULL || strncmp(encoded, "$argon2id$", 10) != 0)
        return 0;
    return argon2id_verify(encoded, password, strlen(password)) == ARGON2_OK;
}

void mgr_pass_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}

static void mgr_pass_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int mgr_pass_token(char out[MGR_TOKEN_HEX + 1])
{
    unsigned char r[MGR_TOKEN_HEX / 2];

    if (RAND_bytes(r, sizeof(r)) != 1)
        return -1;
    mgr_pass_hex(r, sizeof(r), out);
    OPENSSL_cleanse(r, sizeof(r));
    return 0;
}

void mgr_pass_token_hash(const char *s, size_t n, char out[MGR_TOKEN_HEX + 1])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (EVP_Digest(s, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        memset(md, 0, sizeof(md)); /* matches no stored hash */
    mgr_pass_hex(md, sizeof(md), out);
}

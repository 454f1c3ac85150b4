/*
 * mgr_pass.h - password hashing for the Manager's accounts, shared by
 * sluice-manager (login) and `sluicectl admin` (add, passwd).
 *
 * argon2id (libargon2) with an encoded hash ("$argon2id$v=19$m=65536,t=3,
 * p=1$salt$hash"): the parameters travel with the hash, so raising them
 * later keeps old hashes verifiable.  Salts are 16 bytes from OpenSSL's
 * RAND_bytes.
 *
 * SECURITY: the verification compares in constant time (libargon2); the
 * caller clears the password from memory (mgr_pass_wipe).
 */
#ifndef SLUICE_MGR_PASS_H
#define SLUICE_MGR_PASS_H

#include <stddef.h>

#define MGR_PASS_T_COST 3
#define MGR_PASS_M_COST (64 * 1024) /* KiB: 64 MiB */
#define MGR_PASS_PARALLELISM 1
#define MGR_PASS_MIN_LEN 10
#define MGR_PASS_MAX_LEN 1024
#define MGR_PASS_ENCODED_MAX 256

/* 0 and the encoded hash in out, or -1 (err filled). */
int mgr_pass_hash(const char *password, char *out, size_t outsz, char *err,
                  size_t errsz);
/* 1 the password matches, 0 it does not (or the hash is malformed). */
int mgr_pass_verify(const char *encoded, const char *password);
/* 0 acceptable, -1 with err: too short/long, or a NUL/control byte. */
int mgr_pass_check(const char *password, char *err, size_t errsz);
#define MGR_TOKEN_HEX 64 /* 256-bit ids and tokens, hex */
/* hex of 32 random bytes (OpenSSL RAND_bytes): session ids, CSRF and API
 * tokens; -1 if the generator fails */
int mgr_pass_token(char out[MGR_TOKEN_HEX + 1]);
/* hex SHA-256 of s: what api_token.token_hash stores */
void mgr_pass_token_hash(const char *s, size_t n, char out[MGR_TOKEN_HEX + 1]);
/* clears n bytes so the compiler cannot drop it */
void mgr_pass_wipe(void *p, size_t n);

#endif

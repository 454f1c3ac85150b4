/*
 * psl.h - a Public Suffix List matcher (publicsuffix.org format, as the
 * Debian package `publicsuffix` ships it in
 * /usr/share/publicsuffix/public_suffix_list.dat): normal rules,
 * wildcards (`*.ck`) and exceptions (`!www.ck`), ICANN and private
 * sections alike.
 *
 * Interface
 *   psl_load(path, err, errlen)  read the list; NULL with a reason
 *   psl_from_text(text)          the same from memory (tests)
 *   psl_registered(psl, domain, out, outlen)
 *                                the registrable domain ("example.co.uk"
 *                                for "a.b.example.co.uk"); 0, or -1 when
 *                                the name is itself a public suffix or not
 *                                a host name
 *   psl_free(psl)
 *
 * Domains are ASCII (IDNs as punycode); the list's Unicode rules then
 * never match and such names fall back to the default rule `*`.
 *
 * SECURITY: the list is operator-installed; the domains matched against
 * it come from messages and are bounded (253 octets, 127 labels).
 */
#ifndef SLUICE_PSL_H
#define SLUICE_PSL_H

#include <stddef.h>

typedef struct psl psl;

psl *psl_load(const char *path, char *err, size_t errlen);
psl *psl_from_text(const char *text);
int psl_registered(const psl *p, const char *domain, char *out, size_t outlen);
size_t psl_rule_count(const psl *p);
void psl_free(psl *p);

#endif

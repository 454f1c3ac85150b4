/*
 * rules_eval.c - built-in tests (eval rules) for structural spam signs a
 * regex cannot express well: how the MIME parts fit together (HTML only,
 * no text at all, alternatives that say different things, images with
 * hardly any text), the shape of the visible text (share of capitals,
 * density of exclamation marks and money amounts, text in the colour of
 * its background), and the addresses and trace fields (a display name
 * that is another domain's address, Reply-To elsewhere, many recipients,
 * a HELO naming another IP address than the client's, a subject padded
 * with blanks and an id).
 *
 * Each test reads what rules_view_build() already made (the decoded text
 * with the text parts' places in it, HTML statistics collected while the
 * HTML was turned into text) or a few header fields: none of them makes
 * another pass over the raw message.  rules_view.c's name table and
 * rules_eval_run() hand every function from EV_HTML_ONLY on to
 * rules_eval_more() here.
 *
 * SECURITY: every input is attacker-controlled.  Scans are bounded
 * (EV_MAX_SCAN bytes of a header, EV_WORDS distinct words per part, the
 * first EV_MAX_RCVD Received fields); addresses and tokens are copied
 * into fixed buffers with explicit lengths; no allocation but the two
 * word sets of alternative_mismatch.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules_int.h"

#define EV_MAX_SCAN (64 * 1024) /* header bytes looked at */
#define EV_MAX_RCVD 20          /* Received fields looked at */
#define EV_WORDS 2048           /* distinct words kept per part */
#define EV_MIN_WORDS 20         /* alternatives shorter say too little */

int rules_eval_args(rules_eval_fn fn)
{
    switch (fn) {
    case EV_MISSING_HEADER:
        return EVA_HEADER;
    case EV_RECEIVED_FORGED:
    case EV_LINK_MISMATCH:
    case EV_CHARSET_MISMATCH:
    case EV_HTML_ONLY:
    case EV_MIME_NO_TEXT:
    case EV_FROM_NAME_ADDRESS:
    case EV_REPLY_TO_OTHER_DOMAIN:
    case EV_HELO_IP_MISMATCH:
        return EVA_NONE;
    case EV_BODY_CAPS_RATIO:
    case EV_EXCLAIM_DENSITY:
    case EV_MONEY_DENSITY:
        return EVA_NUM2;
    default:
        return EVA_NUM;
    }
}

/* ---------------------------------------------------------------- parts */

static const sluice_part *ev_part(const rules_view *v, int i)
{
    if (i < 0 || (size_t)i >= v->in.nparts)
        return NULL;
    return v->in.part(v->in.arg, (size_t)i);
}

/* Letters and digits (any byte of a UTF-8 sequence counts) in a text
 * part's text, counting stops at `enough`. */
static size_t ev_alnum(const rules_view *v, const rules_tpart *t,
                       size_t enough)
{
    size_t i, n = 0;

    for (i = 0; i < t->len && n < enough; i++) {
        unsigned char c = (unsigned char)v->text[t->off + i];
        if (isalnum(c) || c >= 0x80)
            n++;
    }
    return n;
}

static int ev_is_plain(const rules_view *v, const rules_tpart *t)
{
    const sluice_part *p = ev_part(v, t->part);

    return p != NULL && strcmp(p->type, "text/plain") == 0;
}

/* text/html, and no text/plain with a letter in it */
static int ev_html_only(const rules_view *v)
{
    size_t i;
    int html = 0;

    for (i = 0; i < v->ntparts; i++) {
        if (v->tparts[i].html)
            html = 1;
        else if (ev_is_plain(v, &v->tparts[i]) &&
                 ev_alnum(v, &v->tparts[i], 1) > 0)
            return 0;
    }
    return html;
}

/* Leaves that are not text (images, attachments), and no text part with
 * a letter in it. */
static int ev_mime_no_text(const rules_view *v)
{
    size_t i;
    int other = 0;

    for (i = 0; i < v->ntparts; i++)
        if (ev_alnum(v, &v->tparts[i], 1) > 0)
            return 0;
    for (i = 0; i < v->in.nparts && !other; i++) {
        const sluice_part *p = v->in.part(v->in.arg, i);
        if (p != NULL && !p->is_multipart &&
            (p->is_attachment || strncmp(p->type, "text/", 5) != 0))
            other = 1;
    }
    return other;
}

/* HTML with <img> tags and fewer than `max` letters in all text parts. */
static int ev_image_only(const rules_view *v, double max)
{
    size_t i, n = 0;
    int html = 0;

    if (v->html_imgs == 0)
        return 0;
    for (i = 0; i < v->ntparts; i++) {
        html |= v->tparts[i].html;
        n += ev_alnum(v, &v->tparts[i], (size_t)max + 1);
        if ((double)n >= max)
            return 0;
    }
    return html;
}

/* ---------------------------------------------------------------- words */

typedef struct ev_set {
    uint32_t slot[2 * EV_WORDS]; /* 0 empty */
    size_t n;
} ev_set;

/* Slot of hash h: where it is, or the empty slot where it would go. */
static size_t ev_set_slot(const ev_set *s, uint32_t h)
{
    size_t i = h & (2 * EV_WORDS - 1);

    while (s->slot[i] != 0 && s->slot[i] != h)
        i = (i + 1) & (2 * EV_WORDS - 1);
    return i;
}

static int ev_set_has(const ev_set *s, uint32_t h)
{
    return s->slot[ev_set_slot(s, h)] == h;
}

/* Add hash h: 1 if it was new (and the set not full), else 0. */
static int ev_set_add(ev_set *s, uint32_t h)
{
    size_t i = ev_set_slot(s, h);

    if (s->slot[i] == h || s->n >= EV_WORDS)
        return 0;
    s->slot[i] = h;
    s->n++;
    return 1;
}

/* Next word of three or more letters at *pos below end: its hash, 0 at
 * the end.  Letters: ASCII alphanumerics (case folded) and UTF-8 bytes. */
static uint32_t ev_word(const char *s, size_t *pos, size_t end)
{
    size_t i = *pos;

    while (i < end) {
        uint32_t h = 2166136261u;
        size_t st;
        while (i < end && !isalnum((unsigned char)s[i]) &&
               (unsigned char)s[i] < 0x80)
            i++;
        for (st = i; i < end && (isalnum((unsigned char)s[i]) ||
                                 (unsigned char)s[i] >= 0x80);
             i++)
            h = (h ^ (uint32_t)tolower((unsigned char)s[i])) * 16777619u;
        if (i - st >= 3) {
            *pos = i;
            return h ? h : 1;
        }
    }
    *pos = end;
    return 0;
}

/* Share of the shorter part's distinct words the other part has too;
 * -1 when either has fewer than EV_MIN_WORDS. */
static double ev_overlap(const rules_view *v, const rules_tpart *plain,
                         const rules_tpart *html)
{
    ev_set *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    size_t pos, end, common = 0, least;
    uint32_t h;
    double share = -1;

    if (a == NULL || b == NULL)
        goto out;
    pos = html->off;
    end = html->off + html->len;
    while ((h = ev_word(v->text, &pos, end)) != 0 && a->n < EV_WORDS)
        (void)ev_set_add(a, h);
    pos = plain->off;
    end = plain->off + plain->len;
    while ((h = ev_word(v->text, &pos, end)) != 0 && b->n < EV_WORDS)
        if (ev_set_add(b, h) && ev_set_has(a, h))
            common++;
    least = a->n < b->n ? a->n : b->n;
    if (least >= EV_MIN_WORDS)
        share = (double)common / (double)least;
out:
    free(a);
    free(b);
    return share;
}

/* A multipart/alternative whose text/plain and text/html share less than
 * `min` of their words. */
static int ev_alt_mismatch(const rules_view *v, double min)
{
    size_t i, j;

    for (i = 0; i < v->ntparts; i++) {
        const rules_tpart *h = &v->tparts[i];
        const sluice_part *par = ev_part(v, h->parent);
        if (!h->html || par == NULL ||
            strcmp(par->type, "multipart/alternative") != 0)
            continue;
        for (j = 0; j < v->ntparts; j++)
            if (v->tparts[j].parent == h->parent &&
                ev_is_plain(v, &v->tparts[j])) {
                double s = ev_overlap(v, &v->tparts[j], h);
                return s >= 0 && s < min;
            }
    }
    return 0;
}

/* ---------------------------------------------------------------- text */

/* The visible text after the Subject line. */
static const char *ev_body(const rules_view *v, size_t *len)
{
    size_t off = v->body_off <= v->text_len ? v->body_off : v->text_len;

    *len = v->text_len - off;
    return v->text + off;
}

/* At least `minlen` ASCII letters, `pct` % or more of them capitals. */
static int ev_caps_ratio(const rules_view *v, double pct, double minlen)
{
    size_t n, i, up = 0, low = 0;
    const char *s = ev_body(v, &n);

    for (i = 0; i < n; i++) {
        if (s[i] >= 'A' && s[i] <= 'Z')
            up++;
        else if (s[i] >= 'a' && s[i] <= 'z')
            low++;
    }
    return (double)(up + low) >= minlen && up + low > 0 &&
           (double)up * 100.0 >= pct * (double)(up + low);
}

/* At least `min` marks and `perk` of them per 1000 bytes of text. */
static int ev_density(size_t count, size_t len, double min, double perk)
{
    return count > 0 && (double)count >= min &&
           (double)count * 1000.0 >= perk * (double)(len ? len : 1);
}

static int ev_exclaim(const rules_view *v, double min, double perk)
{
    size_t n, i, c = 0;
    const char *s = ev_body(v, &n);

    for (i = 0; i < n; i++)
        c += s[i] == '!';
    return ev_density(c, n, min, perk);
}

/* Money amounts: $, £, € or "US$" right before a digit (one space
 * allowed), and a number right before "USD" or "dollars". */
static int ev_money(const rules_view *v, double min, double perk)
{
    size_t n, i, c = 0;
    const char *s = ev_body(v, &n);

    for (i = 0; i < n; i++) {
        size_t k = 0;
        if (s[i] == '$')
            k = 1;
        else if (i + 1 < n && (unsigned char)s[i] == 0xc2 &&
                 (unsigned char)s[i + 1] == 0xa3) /* £ */
            k = 2;
        else if (i + 2 < n && (unsigned char)s[i] == 0xe2 &&
                 (unsigned char)s[i + 1] == 0x82 &&
                 (unsigned char)s[i + 2] == 0xac) /* € */
            k = 3;
        else if (isdigit((unsigned char)s[i]) &&
                 (i + 1 >= n || !isalnum((unsigned char)s[i + 1]))) {
            size_t j = i + 1;
            if (j < n && s[j] == ' ')
                j++;
            if ((j + 3 <= n && strncmp(s + j, "USD", 3) == 0) ||
                (j + 7 <= n && strncasecmp(s + j, "dollars", 7) == 0))
                c++;
            continue;
        }
        if (k == 0)
            continue;
        if (i + k < n && s[i + k] == ' ')
            k++;
        if (i + k < n && isdigit((unsigned char)s[i + k])) {
            c++; /* past the whole amount: "$100 USD" is one */
            for (i += k; i + 1 < n && (isdigit((unsigned char)s[i + 1]) ||
                                       s[i + 1] == ',' || s[i + 1] == '.');
                 i++)
                ;
        }
    }
    return ev_density(c, n, min, perk);
}

/* ---------------------------------------------------------------- addresses */

/* The address of a From/Reply-To value ("Name <a@b>", "a@b (Name)",
 * "a@b"): its domain's last two labels into dom (lower case), and where
 * the display name ends (the '<', or the value itself if none). */
static void ev_addr_domain(const char *val, char *dom, size_t domsz,
                           const char **name_end)
{
    const char *lt = strrchr(val, '<'), *at, *e;
    char addr[256];
    size_t n;

    dom[0] = '\0';
    if (name_end != NULL)
        *name_end = lt != NULL ? lt : val;
    if (lt != NULL) {
        at = lt + 1;
        e = strchr(at, '>');
        if (e == NULL)
            e = at + strlen(at);
    } else {
        at = val;
        while (*at == ' ' || *at == '\t')
            at++;
        for (e = at; *e && *e != ' ' && *e != '\t' && *e != ',' && *e != '(';
             e++)
            ;
    }
    n = (size_t)(e - at);
    if (n == 0 || n >= sizeof(addr) || memchr(at, '@', n) == NULL)
        return;
    memcpy(addr, at, n);
    addr[n] = '\0';
    rules_host_domain(strrchr(addr, '@'), dom, domsz);
}

static int ev_addr_char(unsigned char c)
{
    return isalnum(c) || c == '.' || c == '-' || c == '_' || c == '+' ||
           c == '%';
}

/* The display name of From holds an address whose domain is not the
 * real address's ("paypal.com@..." looks, "service@paypal.com"
 * <x@elsewhere.example>). */
static int ev_from_name_addr(const rules_view *v)
{
    const sluice_header *h = rules_view_header(v, "from", 0);
    const char *name_end, *p;
    char real[256], shown[256], tok[256];

    if (h == NULL)
        return 0;
    ev_addr_domain(h->value, real, sizeof(real), &name_end);
    if (real[0] == '\0' || name_end == h->value)
        return 0;
    /* "'bob@example.com' via Group" <group@lists.example>: a list or
     * service relaying in someone's name, not a lie */
    if (memmem(h->value, (size_t)(name_end - h->value), " via ", 5) != NULL)
        return 0;
    for (p = h->value; p < name_end; p++) {
        const char *b = p, *e = p + 1;
        size_t n;
        if (*p != '@')
            continue;
        while (b > h->value && ev_addr_char((unsigned char)b[-1]))
            b--;
        while (e < name_end && ev_addr_char((unsigned char)*e))
            e++;
        n = (size_t)(e - b);
        if (b == p || e == p + 1 || n >= sizeof(tok))
            continue;
        memcpy(tok, b, n);
        tok[n] = '\0';
        rules_host_domain(strchr(tok, '@'), shown, sizeof(shown));
        if (shown[0] != '\0' && strcmp(shown, real) != 0)
            return 1;
    }
    return 0;
}

/* Reply-To's domain is another than From's. */
static int ev_reply_to_other(const rules_view *v)
{
    const sluice_header *f = rules_view_header(v, "from", 0);
    const sluice_header *r = rules_view_header(v, "reply-to", 0);
    char a[256], b[256];

    if (f == NULL || r == NULL || strchr(r->value, ',') != NULL)
        return 0; /* several reply addresses: a group reply */
    ev_addr_domain(f->value, a, sizeof(a), NULL);
    ev_addr_domain(r->value, b, sizeof(b), NULL);
    return a[0] && b[0] && strcmp(a, b) != 0;
}

/* Addresses in To and Cc ('@' outside quoted display names). */
static int ev_recipients(const rules_view *v, double min)
{
    size_t i, count = 0;

    for (i = 0; i < v->in.nheaders; i++) {
        const sluice_header *h = v->in.header(v->in.arg, i);
        const char *p;
        size_t k;
        int q = 0;
        if (h == NULL || h->name.len != 2 ||
            (strncasecmp(h->name.ptr, "to", 2) != 0 &&
             strncasecmp(h->name.ptr, "cc", 2) != 0))
            continue;
        for (p = h->value, k = 0; *p && k < EV_MAX_SCAN; p++, k++) {
            if (*p == '"')
                q = !q;
            else if (*p == '@' && !q)
                count++;
        }
        if ((double)count >= min)
            return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- subject */

static int ev_id_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '#' || c == '[' ||
           c == ']' || c == '(' || c == ')' || c == '.' || c == ':';
}

/* Subject text, then `min` or more blanks, then a 3-40 byte token with a
 * digit in it at the very end (mass-mailing tools tag each copy so). */
static int ev_subject_id(const rules_view *v, double min)
{
    const sluice_header *h = rules_view_header(v, "subject", 0);
    const char *s, *e, *t;
    size_t blanks = 0;
    int digit = 0;

    if (h == NULL)
        return 0;
    s = h->value;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
                     e[-1] == '\n'))
        e--;
    for (t = e; t > s && ev_id_char((unsigned char)t[-1]); t--)
        digit |= isdigit((unsigned char)t[-1]) != 0;
    if (!digit || e - t < 3 || e - t > 40)
        return 0;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t')) {
        blanks++;
        t--;
    }
    return t > s && (double)blanks >= min;
}

/* ---------------------------------------------------------------- trace */

/* A dotted quad, n bytes, of a public address. */
static int ev_public_ipv4(const char *s, size_t n)
{
    unsigned o[4] = {0, 0, 0, 0};
    size_t i, k = 0, nd = 0;

    for (i = 0; i < n; i++) {
        if (isdigit((unsigned char)s[i]) && nd < 3) {
            o[k] = o[k] * 10 + (unsigned)(s[i] - '0');
            nd++;
        } else if (s[i] == '.' && nd > 0 && k < 3) {
            k++;
            nd = 0;
        } else {
            return 0;
        }
    }
    if (k != 3 || nd == 0 || o[0] > 255 || o[1] > 255 || o[2] > 255 ||
        o[3] > 255)
        return 0;
    return !(o[0] == 0 || o[0] == 10 || o[0] == 127 || o[0] >= 224 ||
             (o[0] == 172 && o[1] >= 16 && o[1] <= 31) ||
             (o[0] == 192 && o[1] == 168) || (o[0] == 169 && o[1] == 254) ||
             (o[0] == 100 && o[1] >= 64 && o[1] <= 127));
}

static size_t ev_token_len(const char *s)
{
    size_t n = 0;

    while (s[n] && s[n] != ' ' && s[n] != '\t' && s[n] != ')' &&
           s[n] != '(' && s[n] != ';' && n < 64)
        n++;
    return n;
}

/* The IPv4 address of token s[0..n), brackets allowed, into out[16];
 * 1 if it is one (digits and dots; ev_public_ipv4 checks the rest). */
static int ev_ip_token(const char *s, size_t n, char *out)
{
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
        s++, n -= 2;
    if (n < 7 || n > 15 || strspn(s, "0123456789.") < n)
        return 0;
    memcpy(out, s, n);
    out[n] = '\0';
    return 1;
}

/* The first "[a.b.c.d]" in s[0..n) into out[16]; 1 if found. */
static int ev_first_bracket_ip(const char *s, size_t n, char *out)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        if (s[i] != '[')
            continue;
        for (j = i + 1; j < n && j < i + 17 && s[j] != ']'; j++)
            ;
        if (j < n && s[j] == ']' && ev_ip_token(s + i, j - i + 1, out))
            return 1;
    }
    return 0;
}

/* Same /24 (a.b.c.*): a host with several addresses, or a NAT pool,
 * names a neighbour of the address it connects from. */
static int ev_same_net(const char *a, const char *b)
{
    const char *da = strrchr(a, '.'), *db = strrchr(b, '.');

    return da != NULL && db != NULL && da - a == db - b &&
           strncmp(a, b, (size_t)(da - a)) == 0;
}

/* A Received field whose HELO is a public IPv4 address (bare or in
 * brackets) other than the address the client connected from:
 * "from 192.0.2.7 (host [198.51.100.4])" (Postfix, sendmail),
 * "from [198.51.100.4] (helo=192.0.2.7)" (Exim).  A private HELO
 * address is a client behind NAT and says nothing, nor does one in the
 * client's /24. */
static int ev_helo_ip_mismatch(const rules_view *v)
{
    size_t i, seen = 0;

    for (i = 0; i < v->in.nheaders && seen < EV_MAX_RCVD; i++) {
        const sluice_header *h = v->in.header(v->in.arg, i);
        const char *p, *helo, *after, *e;
        char hip[16], cip[16];
        size_t n;
        if (h == NULL || h->name.len != 8 ||
            strncasecmp(h->name.ptr, "received", 8) != 0)
            continue;
        seen++;
        p = h->value;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "from ", 5) != 0)
            continue;
        p += 5;
        n = strlen(p);
        if (n > EV_MAX_SCAN)
            n = EV_MAX_SCAN;
        /* the "from" clause only: the receiving host's own address that
         * may follow "by" is not the client's */
        for (e = p; e + 4 <= p + n && strncmp(e, " by ", 4) != 0; e++)
            ;
        if (e + 4 > p + n)
            e = p + n;
        helo = p;
        after = p + ev_token_len(p);
        for (const char *q = p; q + 5 <= e; q++)
            if (strncasecmp(q, "helo=", 5) == 0) {
                helo = q + 5;
                after = p; /* Exim: the client's address comes first */
                break;
            }
        if (!ev_ip_token(helo, ev_token_len(helo), hip) ||
            !ev_public_ipv4(hip, strlen(hip)) || after > e ||
            !ev_first_bracket_ip(after, (size_t)(e - after), cip) ||
            !ev_public_ipv4(cip, strlen(cip))) /* an internal relay hop */
            continue;
        if (!ev_same_net(hip, cip))
            return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- dispatch */

int rules_eval_more(const rule *r, const rules_view *v)
{
    switch (r->fn) {
    case EV_HTML_ONLY:
        return ev_html_only(v);
    case EV_MIME_NO_TEXT:
        return ev_mime_no_text(v);
    case EV_BODY_CAPS_RATIO:
        return ev_caps_ratio(v, r->arg, r->arg2);
    case EV_EXCLAIM_DENSITY:
        return ev_exclaim(v, r->arg, r->arg2);
    case EV_MONEY_DENSITY:
        return ev_money(v, r->arg, r->arg2);
    case EV_ALTERNATIVE_MISMATCH:
        return ev_alt_mismatch(v, r->arg);
    case EV_IMAGE_ONLY_HTML:
        return ev_image_only(v, r->arg);
    case EV_FROM_NAME_ADDRESS:
        return ev_from_name_addr(v);
    case EV_REPLY_TO_OTHER_DOMAIN:
        return ev_reply_to_other(v);
    case EV_SUBJECT_TRAILING_ID:
        return ev_subject_id(v, r->arg);
    case EV_MANY_RECIPIENTS:
        return ev_recipients(v, r->arg);
    case EV_HELO_IP_MISMATCH:
        return ev_helo_ip_mismatch(v);
    case EV_HTML_COLOR_HIDDEN:
        return (double)v->html_hidden >= r->arg;
    default:
        return 0;
    }
}

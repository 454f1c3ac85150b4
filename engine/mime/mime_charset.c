/*
 * mime_charset.c - declared charset to UTF-8, with a small per-parse cache
 * of iconv descriptors.
 *
 * Interface (mime_int.h): mime_charsets_init/close, mime_charset_convert,
 * mime_charset_identity.
 *
 * Policy: "utf-8" is validated (invalid sequences become U+FFFD);
 * undeclared and us-ascii text is kept if it is valid UTF-8, else read as
 * windows-1252 byte by byte; iso-8859-1, latin1, x-user-defined and
 * windows-1252 are read as windows-1252 (as browsers do); common aliases
 * are mapped to the glibc converter that reads what mailers really send
 * (ks_c_5601-1987 -> CP949, gb2312 -> GB18030, shift_jis -> CP932); any
 * other name made of [a-z0-9._:-] goes to iconv (at most
 * MIME_CS_MAX_OPENS descriptors opened per cache).  An unknown name is read
 * like undeclared text and reported as SLUICE_MIME_BAD_CHARSET, as is any
 * undecodable byte (which becomes U+FFFD).
 *
 * SECURITY: charset names are attacker-controlled: they are normalised,
 * length-limited and restricted to a safe alphabet before iconv_open sees
 * them.  iconv only ever converts *to* UTF-8, and its output is validated
 * again before it is used.
 */
#include "mime_int.h"

#include <errno.h>
#include <string.h>

enum {
    CS_LENIENT = 0, /* undeclared / ascii: UTF-8 if valid, else cp1252 */
    CS_UTF8,
    CS_CP1252,
    CS_ICONV,
    CS_UNKNOWN
};

static const struct {
    const char *name;
    int kind;
    const char *iconv_name;
} mime_charset_alias[] = {
    {"", CS_LENIENT, NULL},
    {"us-ascii", CS_LENIENT, NULL},
    {"ascii", CS_LENIENT, NULL},
    {"us", CS_LENIENT, NULL},
    {"ansi_x3.4-1968", CS_LENIENT, NULL},
    {"iso646-us", CS_LENIENT, NULL},
    {"default", CS_LENIENT, NULL},
    {"unknown-8bit", CS_LENIENT, NULL},
    {"x-unknown", CS_LENIENT, NULL},
    {"utf-8", CS_UTF8, NULL},
    {"utf8", CS_UTF8, NULL},
    {"unicode-1-1-utf-8", CS_UTF8, NULL},
    {"x-unicode20utf8", CS_UTF8, NULL},
    {"iso-8859-1", CS_CP1252, NULL},
    {"iso8859-1", CS_CP1252, NULL},
    {"iso_8859-1", CS_CP1252, NULL},
    {"iso-8859-1:1987", CS_CP1252, NULL},
    {"latin1", CS_CP1252, NULL},
    {"latin-1", CS_CP1252, NULL},
    {"l1", CS_CP1252, NULL},
    {"cp819", CS_CP1252, NULL},
    {"ibm819", CS_CP1252, NULL},
    {"windows-1252", CS_CP1252, NULL},
    {"cp1252", CS_CP1252, NULL},
    {"x-cp1252", CS_CP1252, NULL},
    {"x-user-defined", CS_CP1252, NULL},
    {"ks_c_5601-1987", CS_ICONV, "CP949"},
    {"ks_c_5601-1989", CS_ICONV, "CP949"},
    {"ks_c_5601", CS_ICONV, "CP949"},
    {"ksc5601", CS_ICONV, "CP949"},
    {"ksc_5601", CS_ICONV, "CP949"},
    {"euc-kr", CS_ICONV, "CP949"},
    {"windows-949", CS_ICONV, "CP949"},
    {"gb2312", CS_ICONV, "GB18030"},
    {"gb_2312-80", CS_ICONV, "GB18030"},
    {"gbk", CS_ICONV, "GB18030"},
    {"x-gbk", CS_ICONV, "GB18030"},
    {"cp936", CS_ICONV, "GB18030"},
    {"euc-cn", CS_ICONV, "GB18030"},
    {"shift_jis", CS_ICONV, "CP932"},
    {"shift-jis", CS_ICONV, "CP932"},
    {"sjis", CS_ICONV, "CP932"},
    {"x-sjis", CS_ICONV, "CP932"},
    {"ms_kanji", CS_ICONV, "CP932"},
    {"windows-31j", CS_ICONV, "CP932"},
    {"iso-2022-jp", CS_ICONV, "ISO-2022-JP-2"},
    {"tis-620", CS_ICONV, "CP874"},
    {"iso-8859-11", CS_ICONV, "CP874"},
    {"iso-8859-8-i", CS_ICONV, "ISO-8859-8"},
    {"iso-8859-6-i", CS_ICONV, "ISO-8859-6"},
    {"unicode-1-1-utf-7", CS_ICONV, "UTF-7"},
    {"x-mac-roman", CS_ICONV, "MACINTOSH"},
};

void mime_charsets_init(mime_charsets *cs)
{
    memset(cs, 0, sizeof(*cs));
}

void mime_charsets_close(mime_charsets *cs)
{
    size_t i;

    for (i = 0; i < cs->n; i++)
        if (cs->ent[i].kind == CS_ICONV)
            iconv_close(cs->ent[i].cd);
    cs->n = cs->next = 0;
}

/* Normalise a declared name: trim, strip quotes and a "*lang" suffix,
 * lower-case.  Returns 0, or -1 if it cannot be a charset name. */
static int mime_charset_norm(const char *name, size_t nlen,
                             char out[MIME_CS_NAMELEN])
{
    size_t i, j = 0, s = 0, e = nlen;

    while (s < e && (name[s] == ' ' || name[s] == '\t' || name[s] == '"'))
        s++;
    while (e > s &&
           (name[e - 1] == ' ' || name[e - 1] == '\t' || name[e - 1] == '"'))
        e--;
    for (i = s; i < e && name[i] != '*'; i++) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.' || c == ':'))
            return -1;
        if (j + 1 >= MIME_CS_NAMELEN)
            return -1;
        out[j++] = c;
    }
    out[j] = '\0';
    return 0;
}

static mime_cs_ent *mime_charset_lookup(mime_charsets *cs, const char *name,
                                        size_t nlen)
{
    char norm[MIME_CS_NAMELEN];
    const char *iname;
    mime_cs_ent *e;
    size_t i;

    if (mime_charset_norm(name, nlen, norm) < 0)
        memcpy(norm, "\x01invalid", sizeof("\x01invalid"));
    for (i = 0; i < cs->n; i++)
        if (strcmp(cs->ent[i].name, norm) == 0)
            return &cs->ent[i];
    if (cs->n < MIME_CS_SLOTS) {
        e = &cs->ent[cs->n++];
    } else {
        e = &cs->ent[cs->next];
        cs->next = (cs->next + 1) % MIME_CS_SLOTS;
        if (e->kind == CS_ICONV)
            iconv_close(e->cd);
    }
    memcpy(e->name, norm, sizeof(norm));
    e->kind = CS_UNKNOWN;
    e->ascii_ok = 0;
    e->cd = (iconv_t)-1;
    if (norm[0] == '\x01')
        return e;
    iname = norm;
    for (i = 0; i < sizeof(mime_charset_alias) / sizeof(mime_charset_alias[0]);
         i++) {
        if (strcmp(mime_charset_alias[i].name, norm) == 0) {
            e->kind = mime_charset_alias[i].kind;
            if (e->kind != CS_ICONV)
                return e;
            iname = mime_charset_alias[i].iconv_name;
            break;
        }
    }
    if (cs->opens >= MIME_CS_MAX_OPENS)
        return e; /* unknown from now on */
    cs->opens++;
    e->cd = iconv_open("UTF-8", iname);
    if (e->cd == (iconv_t)-1) {
        e->kind = CS_UNKNOWN;
        return e;
    }
    e->kind = CS_ICONV;
    {
        /* Does plain ASCII (without escape-like bytes) map to itself? */
        static const char probe[] = "AZaz09 \t\r\n.,;:!\"'()<>@#$%&*/=-_";
        char in[sizeof(probe)], outb[sizeof(probe) * 4];
        char *ip = in, *op = outb;
        size_t il = sizeof(probe) - 1, ol = sizeof(outb);

        memcpy(in, probe, sizeof(probe));
        if (iconv(e->cd, &ip, &il, &op, &ol) != (size_t)-1 && il == 0 &&
            (size_t)(op - outb) == sizeof(probe) - 1 &&
            memcmp(outb, probe, sizeof(probe) - 1) == 0)
            e->ascii_ok = 1;
        iconv(e->cd, NULL, NULL, NULL, NULL);
    }
    return e;
}

/* Bytes that may not be copied through even for ASCII-compatible
 * converters: ESC/SO/SI (ISO 2022), '+' (UTF-7), '~' (HZ), NUL. */
static int mime_charset_plain(const unsigned char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x80 || c == 0x1b || c == 0x0e || c == 0x0f || c == '+' ||
            c == '~' || c == 0)
            return 0;
    }
    return 1;
}

static unsigned mime_charset_iconv(iconv_t cd, const unsigned char *s, size_t n,
                                   mime_buf *b)
{
    char *in = (char *)s, *op;
    size_t inleft = n, oleft, start = b->len, r, before;
    unsigned flags = 0;
    int tries;

    iconv(cd, NULL, NULL, NULL, NULL);
    while (inleft > 0 && !b->oom) {
        if (mime_buf_reserve(b, inleft * 2 + 64) < 0)
            break;
        op = (char *)b->data + b->len;
        oleft = b->cap - b->len - 1;
        before = inleft;
        r = iconv(cd, &in, &inleft, &op, &oleft);
        b->len = (size_t)((unsigned char *)op - b->data);
        if (r != (size_t)-1)
            continue;
        if (errno == E2BIG && (inleft < before || oleft < 256)) {
            mime_buf_reserve(b, b->cap);
            continue;
        }
        flags |= SLUICE_MIME_BAD_CHARSET;
        mime_utf8_put(b, 0xFFFD);
        if (errno == EILSEQ || errno == E2BIG) {
            in++;
            inleft--;
        } else {
            inleft = 0; /* EINVAL: truncated sequence at the end */
        }
    }
    /* Flush a stateful converter's pending output. */
    for (tries = 0; tries < 4 && !b->oom; tries++) {
        if (mime_buf_reserve(b, (size_t)64 << (2 * tries)) < 0)
            break;
        op = (char *)b->data + b->len;
        oleft = b->cap - b->len - 1;
        r = iconv(cd, NULL, NULL, &op, &oleft);
        b->len = (size_t)((unsigned char *)op - b->data);
        if (r != (size_t)-1 || errno != E2BIG)
            break;
    }
    /* Belt and braces: the converter's output must be valid UTF-8. */
    if (!b->oom && !mime_utf8_valid(b->data + start, b->len - start)) {
        mime_buf tmp = {0};
        mime_utf8_repair(&tmp, b->data + start, b->len - start);
        b->len = start;
        mime_buf_put(b, tmp.data, tmp.len);
        if (tmp.oom)
            b->oom = 1;
        mime_buf_free(&tmp);
        flags |= SLUICE_MIME_BAD_CHARSET;
    }
    return flags;
}

unsigned mime_charset_convert(mime_charsets *cs, const char *name, size_t nlen,
                              const unsigned char *s, size_t n, mime_buf *b)
{
    mime_cs_ent *e = mime_charset_lookup(cs, name, nlen);

    switch (e->kind) {
    case CS_UTF8:
        if (mime_utf8_repair(b, s, n) > 0)
            return SLUICE_MIME_BAD_CHARSET;
        return 0;
    case CS_CP1252:
        mime_cp1252_put(b, s, n);
        return 0;
    case CS_ICONV:
        if (e->ascii_ok && mime_charset_plain(s, n)) {
            mime_buf_put(b, s, n);
            return 0;
        }
        return mime_charset_iconv(e->cd, s, n, b);
    case CS_UNKNOWN:
        mime_utf8_lenient(b, s, n);
        return SLUICE_MIME_BAD_CHARSET;
    default:
        mime_utf8_lenient(b, s, n);
        return 0;
    }
}

int mime_charset_identity(mime_charsets *cs, const char *name, size_t nlen,
                          const unsigned char *s, size_t n)
{
    mime_cs_ent *e = mime_charset_lookup(cs, name, nlen);

    switch (e->kind) {
    case CS_UTF8:
    case CS_LENIENT:
        return mime_utf8_valid(s, n);
    case CS_CP1252:
        return mime_ascii_prefix(s, n) == n;
    case CS_ICONV:
        return e->ascii_ok && mime_charset_plain(s, n);
    default:
        return 0;
    }
}

/*
 * fuzz_heuristic_view.c - libFuzzer target for what the rules do with a
 * message: the input is parsed as a message (sluice_mime), turned into
 * the rules' view (HTML to text, links, colours of the open elements,
 * text parts) and scanned with every eval built-in and a few regex rules
 * (PCRE2 only: Hyperscan compiles are too slow to repeat per input and
 * the set is built once).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mime.h"
#include "rules.h"

static const char fz_rules[] =
    "eval A1 1 \"d\" html_text_ratio(0.1)\n"
    "eval A2 1 \"d\" obfuscated_words(1)\n"
    "eval A3 1 \"d\" date_future(24)\n"
    "eval A4 1 \"d\" date_past(365)\n"
    "eval A5 1 \"d\" received_short(2)\n"
    "eval A6 1 \"d\" received_forged()\n"
    "eval A7 1 \"d\" link_mismatch()\n"
    "eval A8 1 \"d\" subject_all_caps(5)\n"
    "eval A9 1 \"d\" charset_mismatch()\n"
    "eval B1 1 \"d\" missing_header(Message-ID)\n"
    "eval B2 1 \"d\" html_only()\n"
    "eval B3 1 \"d\" mime_no_text()\n"
    "eval B4 1 \"d\" image_only_html(300)\n"
    "eval B5 1 \"d\" alternative_mismatch(0.5)\n"
    "eval B6 1 \"d\" body_caps_ratio(40, 10)\n"
    "eval B7 1 \"d\" exclaim_density(1, 1)\n"
    "eval B8 1 \"d\" money_density(1, 1)\n"
    "eval B9 1 \"d\" html_color_hidden(1)\n"
    "eval C1 1 \"d\" from_name_address()\n"
    "eval C2 1 \"d\" reply_to_other_domain()\n"
    "eval C3 1 \"d\" many_recipients(3)\n"
    "eval C4 1 \"d\" subject_trailing_id(2)\n"
    "eval C5 1 \"d\" helo_ip_mismatch()\n"
    "body D1 1 \"d\" /free/i\n"
    "uri D2 1 \"d\" /^http/\n"
    "meta D3 1 \"d\" B2 && B9\n";

static rules_set *fz_rs;

static const sluice_header *fz_hdr(void *a, size_t i) { return mime_header(a, i); }
static const sluice_part *fz_part(void *a, size_t i) { return mime_part(a, i); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rules_limits lim = {.max_text = 65536, .max_uris = 50};
    rules_scratch *s;
    rules_view v;
    rules_result r;
    mime_msg *m;
    char err[256];

    if (fz_rs == NULL) {
        rules_limits rl = {.pcre_only = 1, .match_limit = 10000};
        if ((fz_rs = rules_new(&rl)) == NULL ||
            rules_load_buffer(fz_rs, "fuzz", fz_rules, strlen(fz_rules),
                              RULES_FMT_SLUICE, err, sizeof(err)) != 0 ||
            rules_compile(fz_rs, err, sizeof(err)) != 0)
            __builtin_trap();
    }
    if ((m = mime_parse(data, size, NULL)) == NULL)
        return 0;
    if ((s = rules_scratch_new(fz_rs)) == NULL) {
        mime_free(m);
        return 0;
    }
    memset(&v, 0, sizeof(v));
    v.in.arg = m;
    v.in.nheaders = mime_header_count(m);
    v.in.header = fz_hdr;
    v.in.nparts = mime_part_count(m);
    v.in.part = fz_part;
    v.raw = (const char *)data;
    v.raw_len = size;
    v.now = 1764580000;
    if (rules_view_build(&v, &lim) == 0 && rules_scan(fz_rs, s, &v, &r) == 0)
        rules_result_free(&r);
    rules_view_free(&v);
    rules_scratch_free(s);
    mime_free(m);
    return 0;
}

/*
 * fuzz_policy.c - libFuzzer target for the policy language: any bytes as
 * a script must compile or fail with a "LINE:COL: " error, never crash;
 * a script that compiles is evaluated against a fixed message.
 */
#include "plang.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *f_header(void *arg, const char *name, size_t nth)
{
    static const char *const h[][2] = {{"From", "\"A\" <a+b@example.com>, c@d"},
                                       {"Subject", "hello *?\\"},
                                       {"Received", "x"},
                                       {"Received", "y"}};

    (void)arg;
    for (size_t i = 0; i < 4; i++)
        if (strcasecmp(h[i][0], name) == 0 && nth-- == 0)
            return h[i][1];
    return NULL;
}

static const char *f_rcpt(void *arg, size_t i)
{
    (void)arg;
    return i == 0 ? "bob+tag@example.org" : "x@y";
}

static const char *f_symbol(void *arg, size_t i, double *score)
{
    (void)arg;
    *score = (double)i;
    return i == 0 ? "BAYES_99" : "DNSBL";
}

static int f_listed(void *arg, const char *kind)
{
    (void)arg;
    return kind[0] == 'b';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const vars[] = {"tag_score=5", NULL};
    static const char *const nets[] = {"10.0.0.0/8", NULL};
    plang_opts o = {vars, nets};
    plang_facts f = {NULL, f_header, "a@example.com", 2,    f_rcpt,  "10.1.1.1",
                     6.5,  2,        f_symbol,        1234, f_listed};
    char err[256];
    plang_result r;
    plang_script *s =
        plang_compile((const char *)data, size, &o, err, sizeof(err));

    if (s == NULL) {
        int line, col;
        if (sscanf(err, "%d:%d: ", &line, &col) != 2 &&
            strstr(err, "out of memory") == NULL)
            abort(); /* every syntax error names its place */
        return 0;
    }
    plang_eval(s, &f, &r);
    plang_result_free(&r);
    plang_free(s);
    return 0;
}

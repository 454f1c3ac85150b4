/*
 * fuzz_mgr_view.c - libFuzzer on what sluice-manager makes of untrusted
 * bytes: a stored (attacker-written) message turned into headers and text
 * (mgr_text_view: the MIME parser, the HTML-to-text converter, the UTF-8
 * cleaner), and the quarantine search's time and filter parsing
 * (mgr_qfilter) on query values.  Checks what the functions promise: no
 * crash or out-of-bounds access, the text capped at max_text, the cleaned
 * string bounded and valid UTF-8 (jansson takes it).
 */
#include "mgr_qfilter.h"
#include "mgr_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FZ_MAX_TEXT 2048

static int fz_get(void *arg, const char *name, char *out, size_t outsz)
{
    const char *q = arg;
    size_t nl = strlen(name);

    while (*q) {
        const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
        if ((size_t)(end - q) > nl && strncmp(q, name, nl) == 0 &&
            q[nl] == '=') {
            size_t vl = (size_t)(end - q) - nl - 1;
            if (vl >= outsz)
                vl = outsz - 1;
            memcpy(out, q + nl + 1, vl);
            out[vl] = '\0';
            return 1;
        }
        q = amp ? amp + 1 : end;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = mgr_text_view(data, size, FZ_MAX_TEXT);
    char *s, out[64], err[256];
    mgr_qfilter f;
    int cut;

    if (v != NULL) {
        json_t *t = json_object_get(v, "text");
        if (!json_is_string(t) || json_string_length(t) > FZ_MAX_TEXT)
            abort();
        json_decref(v);
    }
    s = mgr_text_clean((const char *)data, size, 512, &cut);
    if (s == NULL || strlen(s) > 512)
        abort();
    {
        json_t *js = json_string(s); /* NULL unless valid UTF-8 */
        if (js == NULL)
            abort();
        json_decref(js);
    }
    free(s);
    s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    (void)mgr_qfilter_time(s, size & 1, out, sizeof(out));
    (void)mgr_qfilter_parse(fz_get, s, &f, err, sizeof(err));
    free(s);
    return 0;
}

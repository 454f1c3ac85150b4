/*
 * bayes_mime.c - bayes_input over a message parsed by sluice_mime, for the
 * tools and tests (the stage builds its input from the host instead).
 * Kept apart so that the stage does not link the parser twice.
 */
#include "bayes.h"
#include "mime.h"

static const sluice_header *bayes_mime_header(void *arg, size_t i)
{
    return mime_header(arg, i);
}

static const sluice_part *bayes_mime_part(void *arg, size_t i)
{
    return mime_part(arg, i);
}

void bayes_input_mime(bayes_input *in, struct mime_msg *m)
{
    in->arg = m;
    in->nheaders = mime_header_count(m);
    in->header = bayes_mime_header;
    in->nparts = mime_part_count(m);
    in->part = bayes_mime_part;
}

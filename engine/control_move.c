/*
 * control_move.c - the control socket's `move` command: change a stage's
 * place in the chain, persisted in conf.d (conf_move.c), then a graceful
 * reload.
 *
 *   move NAME N             to 1-based position N (as `stages` numbers them)
 *   move NAME before OTHER  just before stage OTHER
 *   move NAME after OTHER   just after stage OTHER
 *
 * Reply: {"ok":true,"changed":bool,"order":[names...],"generation":n}; an
 * unchanged order neither writes nor reloads.  A refused reload puts
 * conf.d back exactly as it was and returns the loader's errors.
 *
 * Kinds keep their places: ingress stages (smtp, milter) stay before the
 * filters, and final stages (quarantine, deliver) after them: a filter
 * after `deliver` would judge mail already delivered.  A move that breaks
 * this is refused with the positions the stage may take.
 *
 * SECURITY: runs in the master (root when started as root); whoever reaches
 * the socket is an administrator.  Names are checked against conf.d.
 */
#include "conf_move.h"
#include "engine.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


enum { CM_INGRESS = 0, CM_FILTER = 1, CM_FINAL = 2 };
static const char *const cm_kind_name[] = {"an ingress", "a filter", "a final"};

/* A stage's kind from the running chain; one it does not know yet (added
 * to conf.d since the last reload) counts as a filter. */
static int cmv_kind(chain *ch, const char *name)
{
    struct sluice_ctx *s = chain_find(ch, name);

    if (s == NULL)
        return CM_FILTER;
    if (s->desc.flags & SLUICE_STAGE_INGRESS)
        return CM_INGRESS;
    if (s->desc.flags & SLUICE_STAGE_FINAL)
        return CM_FINAL;
    return CM_FILTER;
}

/* 0 if stage `si` may go to `pos` (1-based); else -1 with the reason. */
static int cmv_check_kinds(chain *ch, char **names, size_t n, size_t si,
                           size_t pos, buf *err)
{
    int k = cmv_kind(ch, names[si]);
    size_t i, idx = 0, lo = 1, hi = n;
    const char *clash = NULL;
    int clash_kind = 0;

    for (i = 0; i < n; i++) {
        int ki;
        if (i == si)
            continue;
        ki = cmv_kind(ch, names[i]);
        idx++; /* i's 1-based position among the others */
        if (ki < k)
            lo++;
        if (ki > k)
            hi--;
        /* after the move, i is before S when idx < pos */
        if (clash == NULL &&
            ((idx < pos && ki > k) || (idx >= pos && ki < k))) {
            clash = names[i];
            clash_kind = ki;
        }
    }
    if (clash == NULL)
        return 0;
    buf_printf(err,
               "stage '%s' is %s stage: position %zu would put it %s %s "
               "stage '%s'.  Ingress stages come first, final stages "
               "(quarantine, deliver) last; '%s' may take positions "
               "%zu..%zu",
               names[si], cm_kind_name[k], pos,
               clash_kind > k ? "after" : "before", cm_kind_name[clash_kind],
               clash, names[si], lo, hi);
    return -1;
}

static void cmv_reply_ok(struct master *m, int changed, buf *reply)
{
    chain *ch = master_chain(m);
    size_t i;

    buf_printf(reply, "{\"ok\":true,\"changed\":%s,\"order\":[",
               changed ? "true" : "false");
    for (i = 0; i < ch->nstages; i++) {
        if (i)
            buf_addc(reply, ',');
        buf_json_str(reply, ch->stages[i]->name);
    }
    buf_printf(reply, "],\"generation\":%u}", ch->gen);
}

/* The target position from "N", or "before|after OTHER"; 0 on error. */
static size_t cmv_position(char **names, size_t n, size_t si, const char *how,
                           const char *other, buf *err)
{
    size_t i, idx = 0;

    if (other == NULL) {
        long long v;
        if (util_parse_llong(how, &v) < 0 || v < 1 || (size_t)v > n) {
            buf_printf(err, "position '%s' is not a number in 1..%zu", how, n);
            return 0;
        }
        return (size_t)v;
    }
    for (i = 0; i < n; i++) {
        if (i == si)
            continue;
        if (strcmp(names[i], other) == 0)
            return strcmp(how, "before") == 0 ? idx + 1 : idx + 2;
        idx++;
    }
    if (strcmp(names[si], other) == 0)
        buf_printf(err, "cannot move stage '%s' %s itself", other, how);
    else
        buf_printf(err, "no stage named '%s'", other);
    return 0;
}

void control_move(struct master *m, const char *args, buf *reply)
{
    char name[128] = "", how[128] = "", other[128] = "", extra[2] = "";
    char **names = NULL;
    size_t n = 0, si, pos;
    int nargs, changed = 0;
    conf_undo *undo = NULL;
    buf err;

    nargs = sscanf(args, "%127s %127s %127s %1s", name, how, other, extra);
    if (nargs < 2 || nargs == 4 ||
        (nargs == 3 && strcmp(how, "before") != 0 &&
         strcmp(how, "after") != 0) ||
        (nargs == 2 &&
         (strcmp(how, "before") == 0 || strcmp(how, "after") == 0))) {
        control_error(reply, "usage: move STAGE POSITION | move STAGE "
                         "before|after OTHER");
        return;
    }
    buf_init(&err);
    if (conf_stage_order(master_confdir(m), &names, &n, &err) < 0)
        goto refuse;
    for (si = 0; si < n; si++)
        if (strcmp(names[si], name) == 0)
            break;
    if (si == n) {
        buf_printf(&err, "no stage named '%s' in %s", name, master_confdir(m));
        goto refuse;
    }
    if ((pos = cmv_position(names, n, si, how, nargs == 3 ? other : NULL,
                            &err)) == 0)
        goto refuse;
    if (cmv_check_kinds(master_chain(m), names, n, si, pos, &err) < 0)
        goto refuse;
    if (conf_move_stage(master_confdir(m), name, pos, &changed, &undo, &err) <
        0)
        goto refuse;
    if (changed && master_do_reload(m, &err) < 0) {
        buf e2;
        buf_init(&e2);
        if (conf_undo_restore(undo, &e2) < 0)
            buf_printf(&err, "\nand conf.d could not be put back: %s", e2.data);
        buf_free(&e2);
        goto refuse;
    }
    if (changed)
        log_info("stage %s moved to position %zu by the control socket", name,
                 pos);
    cmv_reply_ok(m, changed, reply);
    conf_undo_free(undo);
    conf_names_free(names);
    buf_free(&err);
    return;
refuse:
    control_error(reply, err.data);
    conf_undo_free(undo);
    conf_names_free(names);
    buf_free(&err);
}

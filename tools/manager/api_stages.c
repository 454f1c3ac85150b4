/*
 * api_stages.c - the chain: GET /api/stages (control `stages`), and the
 * changes the engine itself persists in conf.d and applies by a graceful
 * reload: POST /api/stages/:name/enable, /disable (control enable|disable
 * NAME) and /move {"position":N} (control `move NAME N`, 1-based).
 *
 *   enable/disable -> {"ok":true,"changed":bool,"generation":n}
 *   move           -> {"ok":true,"order":[names],"generation":n}
 *   404 unknown stage, 409 the engine refused (reload failed: conf.d was
 *   put back), 502 the engine is not reachable; all {"error"}.
 *
 * SECURITY: changes need the admin role (the core checks it and CSRF).
 * The stage name goes into a control line: only [A-Za-z0-9_.-] is let
 * through, so it cannot add a word or a line.  Every change is audited.
 */
#include "api_util.h"

#include <stdio.h>
#include <string.h>

static void sg_list(mgr_req *r, mgr_resp *resp)
{
    json_t *reply = api_control_ok(r, resp, "stages"), *out;

    if (reply == NULL)
        return;
    out = json_object();
    json_object_set(out, "stages", json_object_get(reply, "stages"));
    json_decref(reply);
    mgr_reply_json(resp, 200, out);
}

static void sg_toggle(mgr_req *r, mgr_resp *resp, int enable)
{
    const char *name = r->nparams > 0 ? r->params[0] : NULL;
    char line[128];
    json_t *reply, *out;
    long long gen;

    if (!api_stage_name_ok(name)) {
        mgr_reply_error(resp, 400, "bad stage name");
        return;
    }
    snprintf(line, sizeof(line), "%s %s", enable ? "enable" : "disable", name);
    if ((reply = api_control_ok(r, resp, line)) == NULL) {
        mgr_audit(r, "stage %s %s refused", name,
                  enable ? "enable" : "disable");
        return;
    }
    out = json_object();
    json_object_set_new(out, "ok", json_true());
    json_object_set(out, "changed", json_object_get(reply, "changed"));
    if (json_is_integer(json_object_get(reply, "generation")))
        gen = json_integer_value(json_object_get(reply, "generation"));
    else
        gen = api_generation(r->m);
    json_object_set_new(out, "generation", json_integer(gen));
    mgr_audit(r, "stage %s %s%s (generation %lld)", name,
              enable ? "enabled" : "disabled",
              json_is_true(json_object_get(reply, "changed")) ? ""
                                                              : ": no change",
              gen);
    json_decref(reply);
    mgr_reply_json(resp, 200, out);
}

static void sg_enable(mgr_req *r, mgr_resp *resp)
{
    sg_toggle(r, resp, 1);
}

static void sg_disable(mgr_req *r, mgr_resp *resp)
{
    sg_toggle(r, resp, 0);
}

static void sg_move(mgr_req *r, mgr_resp *resp)
{
    const char *name = r->nparams > 0 ? r->params[0] : NULL;
    json_t *body, *pos, *reply, *out, *order, *stages, *s;
    char line[160];
    long long n, gen;
    size_t i;

    if (!api_stage_name_ok(name)) {
        mgr_reply_error(resp, 400, "bad stage name");
        return;
    }
    if ((body = mgr_body_json(r, resp)) == NULL)
        return;
    pos = json_object_get(body, "position");
    if (!json_is_integer(pos) || json_integer_value(pos) < 1 ||
        json_integer_value(pos) > 1000) {
        json_decref(body);
        mgr_reply_error(resp, 400, "position: a whole number from 1");
        return;
    }
    n = json_integer_value(pos);
    json_decref(body);
    snprintf(line, sizeof(line), "move %s %lld", name, n);
    if ((reply = api_control_ok(r, resp, line)) == NULL) {
        mgr_audit(r, "stage %s move to %lld refused", name, n);
        return;
    }
    out = json_object();
    json_object_set_new(out, "ok", json_true());
    order = json_object_get(reply, "order");
    if (json_is_array(order)) {
        json_object_set(out, "order", order);
    } else { /* the engine did not say: read the chain back */
        json_t *st = NULL;
        char err[256];
        order = json_array();
        if (mgr_control(r->m, "stages", &st, err, sizeof(err)) == 0) {
            stages = json_object_get(st, "stages");
            json_array_foreach(stages, i, s)
                json_array_append(order, json_object_get(s, "name"));
        }
        json_decref(st);
        json_object_set_new(out, "order", order);
    }
    if (json_is_integer(json_object_get(reply, "generation")))
        gen = json_integer_value(json_object_get(reply, "generation"));
    else
        gen = api_generation(r->m);
    json_object_set_new(out, "generation", json_integer(gen));
    mgr_audit(r, "stage %s moved to position %lld (generation %lld)", name, n,
              gen);
    json_decref(reply);
    mgr_reply_json(resp, 200, out);
}

const mgr_route mgr_routes_stages[] = {
    {"GET", "/api/stages", MGR_ROLE_AUDITOR, sg_list},
    {"POST", "/api/stages/:name/enable", MGR_ROLE_ADMIN, sg_enable},
    {"POST", "/api/stages/:name/disable", MGR_ROLE_ADMIN, sg_disable},
    {"POST", "/api/stages/:name/move", MGR_ROLE_ADMIN, sg_move},
    {NULL, NULL, 0, NULL},
};

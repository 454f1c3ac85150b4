/*
 * control.c - the control socket's commands.  One command line in, one JSON
 * object out, always with "ok".  Commands: status, stages, stats, reload,
 * enable NAME, disable NAME, move NAME N (control_move.c), policy-show,
 * policy-install, help.
 * (policy-show and policy-install: control_policy.c.)
 *
 * enable/disable persist the change in conf.d (the `enabled` line of the
 * stage's section) and then reload; if the reload is refused, the file is
 * put back as it was and the error is returned.
 *
 * SECURITY: the socket is mode 0600 in the state directory; whoever can
 * connect is an administrator.  Input is one bounded line.
 */
#include "engine.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void master_status(struct master *m, buf *b);
void master_stages_json(struct master *m, buf *b);
void master_totals_json(struct master *m, buf *b);

void control_error(buf *reply, const char *msg)
{
    char *copy = util_strdup(msg);
    size_t n = strlen(copy);

    while (n > 0 && (copy[n - 1] == '\n' || copy[n - 1] == ' '))
        copy[--n] = '\0';
    buf_adds(reply, "{\"ok\":false,\"error\":");
    buf_json_str(reply, copy);
    buf_adds(reply, "}");
    free(copy);
}

static void control_toggle(struct master *m, const char *name, int enable,
                           buf *reply)
{
    struct sluice_ctx *s = chain_find(master_chain(m), name);
    buf err;

    if (s == NULL) {
        buf_init(&err);
        buf_printf(&err, "no stage named '%s'", name);
        control_error(reply, err.data);
        buf_free(&err);
        return;
    }
    if (s->common.enabled == enable) {
        buf_printf(reply, "{\"ok\":true,\"changed\":false,\"stage\":");
        buf_json_str(reply, name);
        buf_printf(reply, ",\"enabled\":%s}", enable ? "true" : "false");
        return;
    }
    buf_init(&err);
    if (conf_set_enabled(master_confdir(m), name, enable, &err) < 0) {
        control_error(reply, err.data);
        buf_free(&err);
        return;
    }
    if (master_do_reload(m, &err) < 0) {
        buf e2;
        buf_init(&e2);
        conf_set_enabled(master_confdir(m), name, !enable, &e2);
        buf_free(&e2);
        control_error(reply, err.data);
        buf_free(&err);
        return;
    }
    buf_free(&err);
    log_info("stage %s %s by the control socket", name,
             enable ? "enabled" : "disabled");
    buf_printf(reply, "{\"ok\":true,\"changed\":true,\"stage\":");
    buf_json_str(reply, name);
    buf_printf(reply, ",\"enabled\":%s,\"generation\":%u}",
               enable ? "true" : "false", master_chain(m)->gen);
}

void control_handle(struct master *m, const char *line, buf *reply)
{
    char cmd[64] = "", arg[128] = "";
    int n = sscanf(line, "%63s %127s", cmd, arg);

    if (n < 1) {
        control_error(reply, "empty command; try 'help'");
    } else if (strcmp(cmd, "status") == 0) {
        buf_adds(reply, "{\"ok\":true,");
        master_status(m, reply);
        buf_adds(reply, "}");
    } else if (strcmp(cmd, "stages") == 0 || strcmp(cmd, "stats") == 0) {
        buf_adds(reply, "{\"ok\":true,\"stages\":");
        master_stages_json(m, reply);
        if (strcmp(cmd, "stats") == 0) {
            buf_printf(reply, ",\"generation\":%u,", master_chain(m)->gen);
            master_totals_json(m, reply);
        }
        buf_adds(reply, "}");
    } else if (strcmp(cmd, "policy-show") == 0) {
        control_policy_show(m, reply);
    } else if (strcmp(cmd, "policy-install") == 0) {
        control_policy_install(m, reply);
    } else if (strcmp(cmd, "reload") == 0) {
        buf err;
        buf_init(&err);
        if (master_do_reload(m, &err) < 0)
            control_error(reply, err.data);
        else
            buf_printf(reply, "{\"ok\":true,\"generation\":%u}",
                       master_chain(m)->gen);
        buf_free(&err);
    } else if (strcmp(cmd, "move") == 0) {
        control_move(m, line + strspn(line, " \t") + 4, reply);
    } else if (strcmp(cmd, "enable") == 0 || strcmp(cmd, "disable") == 0) {
        if (n < 2)
            control_error(reply, "usage: enable|disable STAGE");
        else
            control_toggle(m, arg, cmd[0] == 'e', reply);
    } else if (strcmp(cmd, "help") == 0) {
        buf_adds(reply, "{\"ok\":true,\"commands\":[\"status\",\"stages\","
                        "\"stats\",\"reload\",\"enable STAGE\","
                        "\"disable STAGE\","
                        "\"move STAGE N|before X|after X\",\"policy-show\","
                        "\"policy-install\"]}");
    } else {
        buf err;
        buf_init(&err);
        buf_printf(&err, "unknown command '%s'; try 'help'", cmd);
        control_error(reply, err.data);
        buf_free(&err);
    }
}

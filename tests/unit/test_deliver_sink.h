/*
 * test_deliver_sink.h - runs Postfix's smtp-sink(1) for the deliver tests
 * (test_deliver_sink.c).  sink_start() fails the running cmocka test when
 * smtp-sink cannot be started: the live tests never skip.
 */
#ifndef TEST_DELIVER_SINK_H
#define TEST_DELIVER_SINK_H

#include <sys/types.h>

typedef struct sink {
    pid_t pid;
    int port;
    char dir[64];
    /* where it listens: "" for 127.0.0.1:port, "v6" for [::1]:port,
     * "unix" for unix:DIR/s.sock */
    char family[8];
    char unix_path[128];
} sink;

/* Free loopback TCP port (bound, read, closed). */
int free_port(void);
/* Blocking connection to 127.0.0.1:port with 10 s timeouts, or -1. */
int connect_port(int port);
/* smtp-sink on 127.0.0.1:s->port (a free one if 0) with extra options
 * (NULL-terminated), dumping messages into s->dir. */
void sink_start(sink *s, const char *const *opts);
/* Stops it (SIGTERM) and removes the dump directory. */
void sink_stop(sink *s);
/* Stops it but keeps the port number and dump directory. */
void sink_kill(sink *s);
/* The newest dumped message, malloc'd and NUL-terminated, or NULL. */
char *sink_dump(sink *s);

/* What smtp-sink printed (run it with "-v" to see every command). */
char *sink_log(sink *s);

#endif

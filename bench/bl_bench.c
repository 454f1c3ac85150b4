/*
 * bl_bench.c - load generator for sluice-blocklistd (bench/blocklist.sh).
 *
 * Usage: bl_bench HOST PORT QUERIES [CONNECTIONS [DEPTH [V6PERCENT]]]
 *   sends QUERIES "Q <id> <random ip>" requests over CONNECTIONS (default
 *   2) loopback connections, keeping DEPTH (default 64) requests in flight
 *   on each, checks every answer line, and prints
 *   "queries=N seconds=S qps=Q hits=H errors=E".
 *
 * Exit 1 if an answer is missing, malformed or out of order.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BB_MAXCONN 64

typedef struct bb_conn {
    int fd;
    unsigned long sent, answered;
    char rbuf[65536];
    size_t rlen;
} bb_conn;

static unsigned long long bb_rng = 88172645463325252ull;

static unsigned long long bb_rand(void)
{
    bb_rng ^= bb_rng << 13;
    bb_rng ^= bb_rng >> 7;
    bb_rng ^= bb_rng << 17;
    return bb_rng;
}

static double bb_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    bb_conn *c;
    struct pollfd pf[BB_MAXCONN];
    struct sockaddr_in sa;
    unsigned long total, queued = 0, done = 0, hits = 0, errs = 0;
    int nconn = 2, depth = 64, v6pct = 10, i;
    double t0, secs;

    if (argc < 4) {
        fprintf(stderr, "usage: bl_bench HOST PORT QUERIES [CONNECTIONS "
                        "[DEPTH [V6PERCENT]]]\n");
        return 2;
    }
    total = strtoul(argv[3], NULL, 10);
    if (argc > 4)
        nconn = atoi(argv[4]);
    if (argc > 5)
        depth = atoi(argv[5]);
    if (argc > 6)
        v6pct = atoi(argv[6]);
    if (nconn < 1 || nconn > BB_MAXCONN || depth < 1 || depth > 4096) {
        fprintf(stderr, "bl_bench: 1..%d connections, depth 1..4096\n",
                BB_MAXCONN);
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
        fprintf(stderr, "bl_bench: bad IPv4 host %s\n", argv[1]);
        return 2;
    }
    c = calloc((size_t)nconn, sizeof(*c));
    for (i = 0; i < nconn; i++) {
        int one = 1;
        c[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c[i].fd < 0 ||
            connect(c[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            perror("bl_bench: connect");
            return 1;
        }
        setsockopt(c[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pf[i].fd = c[i].fd;
    }
    t0 = bb_now();
    while (done < total) {
        for (i = 0; i < nconn; i++) {
            char out[4096 * 64];
            size_t ol = 0;
            while (c[i].sent - c[i].answered < (unsigned long)depth &&
                   queued < total && ol + 80 < sizeof(out)) {
                unsigned long long r = bb_rand();
                if ((int)(r % 100) < v6pct)
                    ol += (size_t)snprintf(out + ol, sizeof(out) - ol,
                                           "Q %lu 2001:db8:%x:%x::%x\n",
                                           c[i].sent,
                                           (unsigned)(r >> 16) & 0xffff,
                                           (unsigned)(r >> 32) & 0xffff,
                                           (unsigned)(r >> 48) & 0xffff);
                else
                    ol += (size_t)snprintf(
                        out + ol, sizeof(out) - ol, "Q %lu %u.%u.%u.%u\n",
                        c[i].sent, (unsigned)(r >> 8) & 255,
                        (unsigned)(r >> 16) & 255, (unsigned)(r >> 24) & 255,
                        (unsigned)(r >> 32) & 255);
                c[i].sent++;
                queued++;
            }
            if (ol > 0) {
                size_t off = 0;
                while (off < ol) {
                    ssize_t n = write(c[i].fd, out + off, ol - off);
                    if (n < 0) {
                        perror("bl_bench: write");
                        return 1;
                    }
                    off += (size_t)n;
                }
            }
            pf[i].events = POLLIN;
        }
        if (poll(pf, (nfds_t)nconn, 5000) <= 0) {
            fprintf(stderr, "bl_bench: no answer for 5 s\n");
            return 1;
        }
        for (i = 0; i < nconn; i++) {
            ssize_t n;
            char *p, *nl;
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            n = read(c[i].fd, c[i].rbuf + c[i].rlen,
                     sizeof(c[i].rbuf) - c[i].rlen);
            if (n <= 0) {
                fprintf(stderr, "bl_bench: connection closed\n");
                return 1;
            }
            c[i].rlen += (size_t)n;
            p = c[i].rbuf;
            while (
                (nl = memchr(p, '\n', c[i].rlen - (size_t)(p - c[i].rbuf)))) {
                unsigned long id;
                char list[512];
                *nl = '\0';
                if (sscanf(p, "A %lu %511s", &id, list) != 2 ||
                    id != c[i].answered) {
                    fprintf(stderr, "bl_bench: bad answer '%s'\n", p);
                    errs++;
                    return 1;
                }
                if (strcmp(list, "-") != 0)
                    hits++;
                c[i].answered++;
                done++;
                p = nl + 1;
            }
            c[i].rlen -= (size_t)(p - c[i].rbuf);
            memmove(c[i].rbuf, p, c[i].rlen);
        }
    }
    secs = bb_now() - t0;
    printf("queries=%lu seconds=%.3f qps=%.0f hits=%lu errors=%lu\n", done,
           secs, (double)done / secs, hits, errs);
    return 0;
}

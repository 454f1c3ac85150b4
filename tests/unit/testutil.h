/* testutil.h - temporary conf.d directories for the engine unit tests. */
#ifndef SLUICE_TESTUTIL_H
#define SLUICE_TESTUTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

static inline char *tu_mkdir(void)
{
    char tmpl[] = "/tmp/sluice-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static inline void tu_write(const char *dir, const char *name,
                            const char *text)
{
    char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "w");
    if (fp == NULL)
        abort();
    fputs(text, fp);
    fclose(fp);
}

static inline char *tu_read(const char *dir, const char *name)
{
    char path[512];
    static char data[65536];
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((fp = fopen(path, "r")) == NULL)
        return NULL;
    n = fread(data, 1, sizeof(data) - 1, fp);
    data[n] = '\0';
    fclose(fp);
    return data;
}

static inline void tu_rmdir(char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[512];

    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    free(dir);
}

/* engine section that works for an unprivileged or root test run */
#define TU_ENGINE "engine\nsyslog no\nuser root\nlog_level error\n"

#endif

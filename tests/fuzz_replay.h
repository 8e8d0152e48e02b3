/*
 * The replay driver shared by the fuzz targets' corpus runners
 * (fuzz_replay, fuzz_snapshot_replay): run every regular file in the
 * directories (or files) named on the command line through the target's
 * run function, in every build, without libFuzzer.
 */
#ifndef GC_FUZZ_REPLAY_H
#define GC_FUZZ_REPLAY_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int
gc_replay_file(const char *path, size_t max, int (*run)(const uint8_t *, size_t))
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    if (fp == NULL)
        return -1;
    buf = malloc(max);
    if (buf == NULL) {
        fclose(fp);
        return -1;
    }
    n = fread(buf, 1, max, fp);
    fclose(fp);
    run(buf, n);
    free(buf);
    return 0;
}

/* Returns main's exit code: 0 when at least one input was replayed. */
static int
gc_replay_main(int argc, char **argv, size_t max, int (*run)(const uint8_t *, size_t),
               const char *what)
{
    int i, count = 0;

    for (i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        struct dirent *de;

        if (d == NULL) {
            if (gc_replay_file(argv[i], max, run) == 0)
                count++;
            continue;
        }
        while ((de = readdir(d)) != NULL) {
            char path[4096];
            struct stat st;

            snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                gc_replay_file(path, max, run) == 0)
                count++;
        }
        closedir(d);
    }
    printf("%s: %d inputs replayed\n", what, count);
    return count > 0 ? 0 : 1;
}

#endif /* GC_FUZZ_REPLAY_H */

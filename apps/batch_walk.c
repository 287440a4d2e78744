/*
 * batch_walk.c - the file list of a batch: dir-in walked in name order, following links (as
 * find -L) but each directory once, this shard's part of it, and the sweep of the temporaries
 * killed runs of this shard left in dir-out.
 */
#define _GNU_SOURCE
#include "batch_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned batch_shard_of(const char *rel, unsigned n)
{
    unsigned char md[32];
    unsigned len = 0;
    if (n <= 1 || !EVP_Digest(rel, strlen(rel), md, &len, EVP_sha256(), NULL))
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    return (unsigned)(v % n);
}

static int add_item(batch *b, const char *rel, const struct stat *st, int special, int err,
                    const char *note)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        item *p = realloc(b->items, cap * sizeof *p);
        if (!p)
            return -1;
        b->items = p;
        b->cap = cap;
    }
    item *it = &b->items[b->n];
    memset(it, 0, sizeof *it);
    if (!(it->rel = strdup(rel)) || (note && !(it->note = strdup(note)))) {
        free(it->rel);
        return -1;
    }
    it->size = st && !special ? (uint64_t)st->st_size : 0;
    it->mode = st ? (unsigned)st->st_mode & 0777 : 0;
    it->special = special;
    it->err = err;
    b->n++;
    b->total_bytes += it->size;
    return 0;
}

static size_t seen_slot(const batch *b, dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)dev * 0x9e3779b97f4a7c15ull ^ (uint64_t)ino;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    size_t i = (size_t)h & (b->seen_cap - 1);
    while (b->seen[i].rel && !(b->seen[i].dev == dev && b->seen[i].ino == ino))
        i = (i + 1) & (b->seen_cap - 1);
    return i;
}

int batch_seen_add(batch *b, const struct stat *st, const char *rel, const char **first)
{
    if (2 * (b->nseen + 1) > b->seen_cap) {
        const size_t old_cap = b->seen_cap, cap = old_cap ? 2 * old_cap : 256;
        seen_dir *old = b->seen, *p = calloc(cap, sizeof *p);
        if (!p)
            return -1;
        b->seen = p;
        b->seen_cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].rel)
                b->seen[seen_slot(b, old[i].dev, old[i].ino)] = old[i];
        free(old);
    }
    seen_dir *s = &b->seen[seen_slot(b, st->st_dev, st->st_ino)];
    if (s->rel) {
        *first = s->rel;
        return 0;
    }
    if (!(s->rel = strdup(rel)))
        return -1;
    s->dev = st->st_dev;
    s->ino = st->st_ino;
    b->nseen++;
    return 1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}


/* A directory reached at `rel`: walk it unless it was walked already (a loop, or a second link
 * to it) or is dir-out itself (a link to it, or to a directory above it): those are reported,
 * with the reason, and left out. */
/* NOLINTNEXTLINE(misc-no-recursion): one level per directory; a path of PATH_MAX bounds it */
static int walk_dir(batch *b, const char *rel, const struct stat *st)
{
    char note[PATH_MAX + 96];
    const char *first = NULL;
    if (st->st_dev == b->out_st.st_dev && st->st_ino == b->out_st.st_ino)
        return add_item(b, rel, st, 1, 0, "the output directory (reached through a link): not "
                                          "walked");
    const int fresh = batch_seen_add(b, st, rel, &first);
    if (fresh < 0)
        return -1;
    if (fresh)
        return batch_walk(b, rel);
    snprintf(note, sizeof note, "directory already walked as %s (a loop or a second link): skipped",
             *first ? first : "the top of dir-in");
    return add_item(b, rel, st, 1, 0, note);
}

/* Walk dir-in below `rel` (empty at the top), in name order, following symbolic links to files
 * and to directories (as find -L): a folder of links to series converts them. -1 with errno on
 * failure. */
/* NOLINTNEXTLINE(misc-no-recursion): one level per directory; a path of PATH_MAX bounds it */
int batch_walk(batch *b, const char *rel)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s%s%s", b->in_root, *rel ? "/" : "", rel) >= (int)sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) {
                rc = -1;
                break;
            }
            names = p;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n > 1) /* an empty directory has no array at all */
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char r[PATH_MAX], p[PATH_MAX];
        if (snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", names[i]) >= (int)sizeof r ||
            snprintf(p, sizeof p, "%s/%s", dir, names[i]) >= (int)sizeof p) {
            errno = ENAMETOOLONG;
            rc = -1;
            break;
        }
        struct stat st;
        if (stat(p, &st) != 0) /* a link leading nowhere, or the entry went away: that file fails */
            rc = add_item(b, r, NULL, 1, errno ? errno : ENOENT, NULL);
        else if (S_ISDIR(st.st_mode))
            rc = walk_dir(b, r, &st);
        else
            rc = add_item(b, r, &st, !S_ISREG(st.st_mode), 0, NULL);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Removing the fallback temporaries killed runs of this shard left in dir-out (other shards may
 * be running; a live run's temporaries stay anyway). Links are not followed. */
typedef struct sweep_arg {
    const batch *b;
    const char *rel; /* of the directory swept */
} sweep_arg;

static int sweep_want(void *arg, const char *entry, size_t name_len)
{
    const sweep_arg *a = arg;
    const cli *c = a->b->c;
    char r[PATH_MAX];
    if (snprintf(r, sizeof r, "%s%s%.*s", a->rel, *a->rel ? "/" : "", (int)name_len, entry) >=
        (int)sizeof r)
        return 0;
    return c->shard_n <= 1 || batch_shard_of(r, c->shard_n) == c->shard_k - 1;
}

static size_t sweep_subdir(void *arg, int dirfd, const char *entry)
{
    const sweep_arg *a = arg;
    char r[PATH_MAX];
    if (snprintf(r, sizeof r, "%s%s%s", a->rel, *a->rel ? "/" : "", entry) >= (int)sizeof r)
        return 0;
    const int fd = openat(dirfd, entry, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    sweep_arg sub = {a->b, r};
    const size_t n = cli_tmp_sweep(fd, sweep_want, sweep_subdir, &sub);
    close(fd);
    return n;
}

size_t batch_sweep(const batch *b)
{
    sweep_arg top = {b, ""};
    return cli_tmp_sweep(b->out_fd, sweep_want, sweep_subdir, &top);
}

void batch_keep_shard(batch *b)
{
    const cli *c = b->c;
    size_t k = 0;
    b->total_bytes = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (batch_shard_of(b->items[i].rel, c->shard_n) == c->shard_k - 1) {
            b->total_bytes += b->items[i].size;
            b->items[k++] = b->items[i];
        } else {
            free(b->items[i].rel);
            free(b->items[i].note);
        }
    }
    b->n = k;
}

void batch_items_free(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->items[i].rel);
        free(b->items[i].note);
    }
    free(b->items);
    for (size_t i = 0; i < b->seen_cap; i++)
        free(b->seen[i].rel);
    free(b->seen);
}

/*
 * batch_progress.c - the progress of a batch: a bar redrawn in place on a terminal, otherwise a
 * plain line (the caller draws one every 10 s).
 */
#define _GNU_SOURCE
#include "batch_int.h"

#include <stdio.h>

static void human_time(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e7)
        snprintf(buf, len, "--");
    else if (s >= 3600)
        snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

void batch_progress(batch *b, double t0, int final)
{
    pthread_mutex_lock(&b->mu);
    const size_t done = b->done, n = b->n;
    const uint64_t bytes = b->done_bytes, total = b->total_bytes;
    pthread_mutex_unlock(&b->mu);
    const double el = batch_now() - t0, rate = el > 0 ? done / el : 0, mbs = el > 0 ? bytes / el / 1e6 : 0;
    char eta[32];
    human_time(mbs > 0 ? (double)(total - bytes) / 1e6 / mbs : -1, eta, sizeof eta);
    if (b->tty) {
        const int width = 24, fill = total ? (int)((double)bytes / (double)total * width)
                                           : n ? (int)(done * width / n) : width;
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[width] = '\0';
        fprintf(stderr, "\r\033[K[%s] %zu/%zu files  %.1f/%.1f MB  %.1f files/s  %.1f MB/s  ETA %s",
                bar, done, n, bytes / 1e6, total / 1e6, rate, mbs, eta);
        if (final)
            fputc('\n', stderr);
    } else if (!final) {
        fprintf(stderr, "%s: progress: %zu/%zu files, %.1f/%.1f MB, %.1f files/s, %.1f MB/s, ETA %s\n",
                b->c->prog, done, n, bytes / 1e6, total / 1e6, rate, mbs, eta);
    }
    fflush(stderr);
}

/*
 * batch_report.c - what a batch says: one JSON line per file (--report), a line on stderr for a
 * failed file (every file with -v), and the closing summary.
 */
#define _GNU_SOURCE
#include "batch_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* In the order of enum kind and enum status (batch_int.h). */
static const char *const k_kind_names[] = {"other",     "dicom",     "image",    "encrypted",
                                           "no-pixels", "protected", "dicomdir", "special"};
static const char *const k_status_names[NSTATUS] = {NULL,       "copied",   "skipped", "failed",
                                                     "deferred", "dicomdir", NULL};

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

void batch_record(batch *b, const item *it, int kind, outcome *o, double ms)
{
    /* The adapter's messages start with the file's full path; the report has it already. */
    char in[PATH_MAX + 2];
    if ((size_t)snprintf(in, sizeof in, "%s/%s: ", b->in_root, it->rel) < sizeof in) {
        const size_t l = strlen(in);
        if (!strncmp(o->reason, in, l))
            memmove(o->reason, o->reason + l, strlen(o->reason + l) + 1);
    }
    pthread_mutex_lock(&b->mu);
    const int slot = o->status;
    const char *s = slot == S_CONVERTED ? (b->c->encrypt ? "encrypted" : "decrypted")
                    : slot == S_HEADER  ? (b->c->encrypt ? "protected" : "restored")
                                        : k_status_names[slot];
    b->counts[slot]++;
    b->done++;
    b->done_bytes += it->size;
    if (b->report) {
        fputs("{\"path\":", b->report);
        json_str(b->report, it->rel);
        fprintf(b->report, ",\"kind\":\"%s\",\"status\":\"%s\",\"reason\":", k_kind_names[kind], s);
        json_str(b->report, o->reason);
        fprintf(b->report, ",\"in_bytes\":%llu,\"out_bytes\":%llu,\"ms\":%.1f}\n",
                (unsigned long long)it->size, (unsigned long long)o->out_bytes, ms);
        fflush(b->report);
    }
    if (slot == S_FAILED && b->c->verbosity >= 0) {
        if (b->tty)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "%s: %s: %s\n", b->c->prog, it->rel, o->reason);
    } else if (b->c->verbosity >= 1) {
        if (b->tty)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "%s: %s: %s%s%s\n", b->c->prog, it->rel, s, o->reason[0] ? ": " : "",
                o->reason);
    }
    pthread_mutex_unlock(&b->mu);
}

void batch_summary(const batch *b, double el, int stopped)
{
    const cli *c = b->c;
    fprintf(stderr,
            "%s: %zu of %zu files: %zu %s, %zu headers %s, %zu copied, %zu skipped, %zu DICOMDIR, "
            "%zu deferred, %zu failed; %.1f MB in %.1f s (%.1f files/s, %.1f MB/s)%s%s%s\n",
            c->prog, b->done, b->n, b->counts[S_CONVERTED], c->encrypt ? "encrypted" : "decrypted",
            b->counts[S_HEADER], c->encrypt ? "protected" : "restored", b->counts[S_COPIED], b->counts[S_SKIPPED], b->counts[S_DICOMDIR],
            b->counts[S_DEFERRED], b->counts[S_FAILED], b->done_bytes / 1e6, el,
            el > 0 ? b->done / el : 0, el > 0 ? b->done_bytes / el / 1e6 : 0,
            c->report ? "; report: " : "", c->report ? c->report : "",
            stopped       ? "; interrupted: run the same command again to finish"
            : b->disk_full ? "; stopped: the output file system is full; free space "
                             "and run the same command again"
                           : "");
}

/*
 * cli_main.c - the one flow of dcmencrypt and dcmdecrypt for a single object: options, a tree
 * to batch.c, else check the input, make the output's temporary, get the key, convert, publish.
 * The tools differ only in their cli_tool (dcmencrypt.c, dcmdecrypt.c).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "runtime.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int convert_one(const cli_tool *t, const cli *c, cli_run *r)
{
    int rc;
    if (t->check && (rc = t->check(c, r)) >= 0)
        return rc;
    char tmp[PATH_MAX];
    if ((rc = cli_prepare_output(c, tmp, sizeof tmp)) >= 0)
        return rc;
    cli_secret s;
    if ((rc = cli_secret_get(c, &s, c->encrypt)) >= 0) {
        cli_discard_output(tmp);
        return rc;
    }
    const double t0 = now_ms();
    r->msg[0] = '\0';
    const dcmc_status st = t->convert(c, &s, tmp, r);
    cli_secret_free(&s);
    if (st != DCMC_OK) {
        cli_discard_output(tmp);
        cli_msg_rename(r->msg, sizeof r->msg, tmp, c->out);
        cli_status_msg(r->msg, sizeof r->msg, st);
        cli_error(c, "%s", r->msg);
        return cli_exit_code(st);
    }
    if ((rc = cli_commit_output(c, tmp)) != EXIT_OK)
        return rc;
    r->ms = now_ms() - t0;
    t->report(c, r);
    return EXIT_OK;
}

int cli_main(const cli_tool *t, int argc, char **argv)
{
    app_runtime_init(argv);
    cli c;
    memset(&c, 0, sizeof c);
    c.prog = t->name;
    c.encrypt = t->encrypt;
    const int rc = cli_parse(&c, argc, argv);
    if (rc >= 0)
        return rc;
    if (c.recurse)
        return batch_run(&c);
    cli_run r;
    memset(&r, 0, sizeof r);
    const int code = convert_one(t, &c, &r);
    dcmc_dicom_close(r.obj);
    return code;
}

/*
 * dcmdecrypt - restore an object made by dcmencrypt: `dcmdecrypt [options] in out`, or a tree
 * with --recurse. The key and the integrity of the object are checked before anything is
 * written. What is particular to decrypting; the flow is cli_main.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Read the header first: a passphrase needs the file's salt, and a file that is not ours should
 * fail before anyone is asked for a passphrase. The file is parsed once, here; decryption uses
 * that parse. */
static int check(const cli *c, cli_run *r)
{
    dcmc_dicom_probe_info pi;
    dcmc_status st = dcmc_dicom_open(c->in, &r->obj, &pi, r->msg, sizeof r->msg);
    if (st == DCMC_OK && pi.kind == DCMC_DICOM_PROTECTED) {
        r->header_only = 1; /* no cipher header: the key opens its Encrypted Attributes item */
        return -1;
    }
    if (st == DCMC_OK)
        st = dcmc_dicom_object_peek(r->obj, &r->hdr, r->msg, sizeof r->msg);
    if (st != DCMC_OK) {
        cli_status_msg(r->msg, sizeof r->msg, st);
        cli_error(c, "%s", r->msg);
        return cli_exit_code(st);
    }
    /* The header's scrypt parameters are untrusted: refuse a cost above the limit before anyone
     * types a passphrase. */
    if (!c->key_file && cli_kdf_too_costly(&r->hdr.kdf, c->scrypt_max_mib, r->msg, sizeof r->msg)) {
        cli_error(c, "%s: %s", c->in, r->msg);
        return EXIT_INPUT;
    }
    return -1;
}

/* An object without pixels: its Encrypted Attributes Sequence item opens with the UID key. */
static dcmc_status restore_header(const cli *c, cli_secret *s, const char *tmp, cli_run *r)
{
    uint8_t uid_key[32];
    dcmc_status st = s->have_key ? dcmc_uid_key_from_key(&s->key, uid_key)
                                 : dcmc_uid_key_from_passphrase(s->pass, s->pass_len, uid_key);
    if (st == DCMC_OK)
        st = dcmc_dicom_restore_header(c->in, tmp, uid_key, r->msg, sizeof r->msg);
    else
        snprintf(r->msg, sizeof r->msg, "key derivation failed: %s", dcmc_status_str(st));
    dcmc_wipe(uid_key, sizeof uid_key);
    return st;
}

static dcmc_status decrypt(const cli *c, cli_secret *s, const char *tmp, cli_run *r)
{
    if (r->header_only)
        return restore_header(c, s, tmp, r);
    dcmc_status st = DCMC_OK;
    if (!s->have_key) {
        if (r->hdr.kdf.id != DCMC_KDF_SCRYPT) {
            snprintf(r->msg, sizeof r->msg,
                     "%s was encrypted with a key file, not a passphrase: use --key-file", c->in);
            return DCMC_ERR_WRONG_KEY;
        }
        st = dcmc_key_from_passphrase_max(s->pass, s->pass_len, &r->hdr.kdf, c->scrypt_max_mib,
                                          &s->key);
    }
    if (st == DCMC_OK)
        st = dcmc_dicom_object_decrypt(r->obj, tmp, &s->key, c->opt.threads, &r->info, r->msg,
                                       sizeof r->msg);
    else
        snprintf(r->msg, sizeof r->msg, "key derivation failed: %s", dcmc_status_str(st));
    return st;
}

static void report(const cli *c, const cli_run *r)
{
    const dcmc_dicom_info *info = &r->info;
    cli_info(c, 1, "%s: %s -> %s: %ux%u, %u frame(s), preset %s, %.1f ms", c->prog, c->in, c->out,
             info->layout.cols, info->layout.rows, info->frames, dcmc_preset_name(r->hdr.preset.id),
             r->ms);
    cli_info(c, 2, "%s: read %.1f ms, checks + cipher %.1f ms, encode + write %.1f ms (%s -> %s)",
             c->prog, info->read_ns / 1e6, info->cipher_ns / 1e6, info->write_ns / 1e6,
             info->transfer_syntax, info->output_transfer_syntax);
}

int main(int argc, char **argv)
{
    static const cli_tool k_tool = {"dcmdecrypt", 0, check, decrypt, report};
    return cli_main(&k_tool, argc, argv);
}

/*
 * dcmencrypt - encrypt the pixel data of one DICOM object: `dcmencrypt [options] in out`, or a
 * tree with --recurse. What is particular to encrypting; the flow is cli_main.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "cli.h"

static dcmc_status encrypt(const cli *c, cli_secret *s, const char *tmp, cli_run *r)
{
    dcmc_kdf kdf, *kdfp = NULL;
    uint8_t uid_key[32];
    dcmc_status st;
    if (!s->have_key) {
        /* Passphrase: a fresh salt per file for the key; the UID key uses a fixed salt so that
         * the same passphrase maps a study's UIDs the same way in every file. */
        if ((st = dcmc_kdf_new_scrypt(&kdf)) == DCMC_OK &&
            (st = dcmc_key_from_passphrase(s->pass, s->pass_len, &kdf, &s->key)) == DCMC_OK)
            st = dcmc_uid_key_from_passphrase(s->pass, s->pass_len, uid_key);
        kdfp = &kdf;
    } else {
        st = dcmc_uid_key_from_key(&s->key, uid_key);
    }
    const dcmc_dicom_options dopt = cli_dicom_options(c, s);
    if (st != DCMC_OK) {
        snprintf(r->msg, sizeof r->msg, "key derivation failed: %s", dcmc_status_str(st));
    } else {
        st = dcmc_dicom_encrypt(c->in, tmp, &s->key, kdfp, uid_key, &c->opt, &dopt, &r->info,
                                r->msg, sizeof r->msg);
        /* No pixels (a report, a presentation state): its header gets what a tree's would, so
         * that it still references the encrypted images. */
        if (st == DCMC_ERR_NOT_IMAGE) {
            st = dcmc_dicom_protect_header(c->in, tmp, uid_key, &dopt, r->msg, sizeof r->msg);
            r->header_only = st == DCMC_OK;
        }
    }
    dcmc_wipe(uid_key, sizeof uid_key);
    return st;
}

static void report(const cli *c, const cli_run *r)
{
    const dcmc_dicom_info *info = &r->info;
    if (r->header_only) {
        cli_info(c, 1, "%s: %s -> %s: no pixel data: header protected, %.1f ms", c->prog, c->in,
                 c->out, r->ms);
        return;
    }
    cli_info(c, 1, "%s: %s -> %s: %ux%u, %u frame(s), %u samples, %u/%u bits%s, %s -> %s, %.1f ms",
             c->prog, c->in, c->out, info->layout.cols, info->layout.rows, info->frames,
             info->layout.samples, info->layout.bits_stored, info->layout.bits_allocated,
             info->layout.is_signed ? " signed" : "", info->transfer_syntax,
             info->output_transfer_syntax, r->ms);
    cli_info(c, 2, "%s: read+decode %.1f ms, cipher %.1f ms, write %.1f ms", c->prog,
             info->read_ns / 1e6, info->cipher_ns / 1e6, info->write_ns / 1e6);
    cli_info(c, 2, "%s: preset %s%s, SIMD %s", c->prog, dcmc_preset_name(c->opt.preset.id),
             c->opt.flags & DCMC_FLAG_STANDARD_LAYER ? " + ChaCha20" : " (no ChaCha20)",
             dcmc_simd_path());
}

int main(int argc, char **argv)
{
    static const cli_tool k_tool = {"dcmencrypt", 1, NULL, encrypt, report};
    return cli_main(&k_tool, argc, argv);
}

/*
 * dcmencrypt - encrypt the pixel data of one DICOM object: `dcmencrypt [options] in out`.
 * A thin main: options and keys (cli.c), the work (the DCMTK adapter and the cipher library).
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "cli.h"

int main(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof c);
    c.prog = "dcmencrypt";
    c.encrypt = 1;
    int rc = cli_parse(&c, argc, argv);
    if (rc >= 0)
        return rc;
    if (c.recurse)
        return batch_run(&c);
    char tmp[PATH_MAX];
    if ((rc = cli_prepare_output(&c, tmp, sizeof tmp)) >= 0)
        return rc;
    cli_secret s;
    if ((rc = cli_secret_get(&c, &s, 1)) >= 0) {
        cli_discard_output(tmp);
        return rc;
    }
    dcmc_kdf kdf, *kdfp = NULL;
    uint8_t uid_key[32];
    dcmc_status st = DCMC_OK;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!s.have_key) {
        /* Passphrase: a fresh salt per file for the key; the UID key uses a fixed salt so that
         * the same passphrase maps a study's UIDs the same way in every file. */
        if ((st = dcmc_kdf_new_scrypt(&kdf)) == DCMC_OK &&
            (st = dcmc_key_from_passphrase(s.pass, s.pass_len, &kdf, &s.key)) == DCMC_OK)
            st = dcmc_uid_key_from_passphrase(s.pass, s.pass_len, uid_key);
        kdfp = &kdf;
    } else {
        st = dcmc_uid_key_from_key(&s.key, uid_key);
    }
    char msg[DCMC_DICOM_MSG];
    dcmc_dicom_info info;
    memset(&info, 0, sizeof info);
    if (st == DCMC_OK)
        st = dcmc_dicom_encrypt(c.in, tmp, &s.key, kdfp, uid_key, &c.opt, &info, msg, sizeof msg);
    else
        snprintf(msg, sizeof msg, "key derivation failed: %s", dcmc_status_str(st));
    dcmc_wipe(uid_key, sizeof uid_key);
    cli_secret_free(&s);
    if (st != DCMC_OK) {
        cli_discard_output(tmp);
        cli_msg_rename(msg, sizeof msg, tmp, c.out);
        cli_error(&c, "%s", msg[0] ? msg : dcmc_status_str(st));
        return cli_exit_code(st);
    }
    if ((rc = cli_commit_output(&c, tmp)) != EXIT_OK)
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cli_info(&c, 1, "%s: %s -> %s: %ux%u, %u frame(s), %u samples, %u/%u bits%s, %s, %.1f ms",
             c.prog, c.in, c.out, info.layout.cols, info.layout.rows, info.frames,
             info.layout.samples, info.layout.bits_stored, info.layout.bits_allocated,
             info.layout.is_signed ? " signed" : "", info.transfer_syntax,
             (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    cli_info(&c, 2, "%s: read+decode %.1f ms, cipher %.1f ms, write %.1f ms", c.prog,
             info.read_ns / 1e6, info.cipher_ns / 1e6, info.write_ns / 1e6);
    cli_info(&c, 2, "%s: preset %s%s, SIMD %s", c.prog, dcmc_preset_name(c.opt.preset.id),
             c.opt.flags & DCMC_FLAG_STANDARD_LAYER ? " + ChaCha20" : " (no ChaCha20)",
             dcmc_simd_path());
    return EXIT_OK;
}

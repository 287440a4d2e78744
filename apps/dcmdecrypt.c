/*
 * dcmdecrypt - restore an object made by dcmencrypt: `dcmdecrypt [options] in out`. The key and
 * the integrity of the object are checked before anything is written.
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
    c.prog = "dcmdecrypt";
    c.encrypt = 0;
    int rc = cli_parse(&c, argc, argv);
    if (rc >= 0)
        return rc;
    if (c.recurse)
        return batch_run(&c);
    char msg[DCMC_DICOM_MSG];
    dcmc_header hdr;
    /* Read the header first: a passphrase needs the file's salt, and a file that is not ours
     * should fail before anyone is asked for a passphrase. */
    dcmc_status st = dcmc_dicom_peek(c.in, &hdr, msg, sizeof msg);
    if (st != DCMC_OK) {
        cli_error(&c, "%s", msg[0] ? msg : dcmc_status_str(st));
        return cli_exit_code(st);
    }
    /* The header's scrypt parameters are untrusted: refuse a cost above the limit before anyone
     * types a passphrase. */
    if (!c.key_file && cli_kdf_too_costly(&hdr.kdf, c.scrypt_max_mib, msg, sizeof msg)) {
        cli_error(&c, "%s: %s", c.in, msg);
        return EXIT_INPUT;
    }
    char tmp[PATH_MAX];
    if ((rc = cli_prepare_output(&c, tmp, sizeof tmp)) >= 0)
        return rc;
    cli_secret s;
    if ((rc = cli_secret_get(&c, &s, 0)) >= 0) {
        cli_discard_output(tmp);
        return rc;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!s.have_key) {
        if (hdr.kdf.id != DCMC_KDF_SCRYPT) {
            cli_secret_free(&s);
            cli_discard_output(tmp);
            cli_error(&c, "%s was encrypted with a key file, not a passphrase: use --key-file", c.in);
            return EXIT_KEY;
        }
        st = dcmc_key_from_passphrase_max(s.pass, s.pass_len, &hdr.kdf, c.scrypt_max_mib, &s.key);
    }
    dcmc_dicom_info info;
    memset(&info, 0, sizeof info);
    if (st == DCMC_OK)
        st = dcmc_dicom_decrypt(c.in, tmp, &s.key, c.opt.threads, &info, msg, sizeof msg);
    else
        snprintf(msg, sizeof msg, "key derivation failed: %s", dcmc_status_str(st));
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
    cli_info(&c, 1, "%s: %s -> %s: %ux%u, %u frame(s), preset %s, %.1f ms", c.prog, c.in, c.out,
             info.layout.cols, info.layout.rows, info.frames, dcmc_preset_name(hdr.preset.id),
             (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    cli_info(&c, 2, "%s: read %.1f ms, checks + cipher %.1f ms, encode + write %.1f ms (%s)", c.prog,
             info.read_ns / 1e6, info.cipher_ns / 1e6, info.write_ns / 1e6, info.transfer_syntax);
    return EXIT_OK;
}

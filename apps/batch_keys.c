/*
 * batch_keys.c - the keys of a batch: a key file's key, or a passphrase with one key derived per
 * salt (scrypt, outside every lock, each salt by one worker) and kept in a small cache.
 */
#define _GNU_SOURCE
#include "batch_int.h"

#include <stdio.h>
#include <string.h>

/* Is x a better entry to take over than victim (NULL: none yet)? An empty one, else the least
 * recently used ready one; a busy one never. */
static int better_victim(const key_entry *x, const key_entry *victim)
{
    if (x->state == KEY_EMPTY)
        return !victim || victim->state != KEY_EMPTY;
    return x->state == KEY_READY &&
           (!victim || (victim->state == KEY_READY && x->used < victim->used));
}

/* The key for a file made with `kdf` (ignored with a key file), up to max_mib of scrypt.
 *
 * scrypt is the expensive part (128 MiB and a good part of a second), so it runs outside every
 * lock: a worker claims a cache entry (BUSY), derives, and publishes it (READY); a worker needing
 * the same salt meanwhile waits for it instead of deriving it twice, while workers needing other
 * salts derive side by side, at most one per core (more would only add 128 MiB each). A failed
 * derivation leaves the entry empty, so it is never taken for a key. */
static dcmc_status key_for(batch *b, const dcmc_kdf *kdf, uint64_t max_mib, dcmc_key *key,
                           char *msg, size_t len)
{
    if (b->secret.have_key) {
        *key = b->secret.key;
        return DCMC_OK;
    }
    if (!kdf || kdf->id != DCMC_KDF_SCRYPT) {
        snprintf(msg, len, "encrypted with a key file, not a passphrase: use --key-file");
        return DCMC_ERR_WRONG_KEY;
    }
    if (cli_kdf_too_costly(kdf, max_mib, msg, len))
        return DCMC_ERR_KDF_COST; /* refused before it takes a slot or a turn */
    pthread_mutex_lock(&b->kmu);
    key_entry *e = NULL;
    for (;;) {
        key_entry *victim = NULL; /* an empty entry, else the least recently used ready one */
        for (size_t i = 0; i < KEY_CACHE; i++) {
            key_entry *x = &b->cache[i];
            if (x->state != KEY_EMPTY && !memcmp(&x->kdf, kdf, sizeof *kdf)) {
                e = x;
                break;
            }
            if (better_victim(x, victim))
                victim = x;
        }
        if (e && e->state == KEY_READY) {
            *key = e->key;
            e->used = ++b->tick;
            pthread_mutex_unlock(&b->kmu);
            return DCMC_OK;
        }
        if (!e && victim && b->deriving < b->derive_cap) {
            e = victim;
            break;
        }
        e = NULL;
        pthread_cond_wait(&b->kcv, &b->kmu); /* its salt is being derived, or no room yet */
    }
    dcmc_wipe(e, sizeof *e);
    e->kdf = *kdf;
    e->state = KEY_BUSY;
    b->derivations++;
    if (++b->deriving > b->max_deriving)
        b->max_deriving = b->deriving;
    pthread_mutex_unlock(&b->kmu);

    dcmc_key k;
    const dcmc_status st =
        dcmc_key_from_passphrase_max(b->secret.pass, b->secret.pass_len, kdf, max_mib, &k);

    pthread_mutex_lock(&b->kmu);
    b->deriving--;
    if (st == DCMC_OK) {
        e->key = k;
        e->state = KEY_READY;
        e->used = ++b->tick;
        *key = k;
    } else {
        dcmc_wipe(e, sizeof *e);
        e->state = KEY_EMPTY;
    }
    pthread_cond_broadcast(&b->kcv);
    pthread_mutex_unlock(&b->kmu);
    dcmc_wipe(&k, sizeof k);
    if (st != DCMC_OK)
        snprintf(msg, len, "key derivation failed: %s", dcmc_status_str(st));
    return st;
}

/* The key an encrypted file needs. Only a passphrase needs the file's header (its salt), so a
 * key file's key costs no extra read of the object; with obj (the file's parse, or NULL) not even
 * a passphrase's. The header is not authenticated before the key is known: its scrypt cost is
 * bounded by --scrypt-max-mib. */
dcmc_status batch_file_key(batch *b, const char *path, dcmc_dicom_object *obj, dcmc_key *key,
                           char *msg, size_t len)
{
    if (b->secret.have_key)
        return key_for(b, NULL, 0, key, msg, len);
    dcmc_header hdr;
    dcmc_status st = obj ? dcmc_dicom_object_peek(obj, &hdr, msg, len)
                         : dcmc_dicom_peek(path, &hdr, msg, len);
    return st != DCMC_OK ? st : key_for(b, &hdr.kdf, b->c->scrypt_max_mib, key, msg, len);
}

/* The run's own parameters (encryption) are trusted: the library's default bound, as dcmencrypt
 * for one file. */
dcmc_status batch_own_key(batch *b, dcmc_key *key, char *msg, size_t len)
{
    return key_for(b, b->secret.have_key ? NULL : &b->enc_kdf, DCMC_SCRYPT_MAX_MIB_DEFAULT, key,
                   msg, len);
}

int batch_keys_setup(batch *b)
{
    const cli *c = b->c;
    int rc = cli_secret_get(c, &b->secret, c->encrypt);
    if (rc >= 0)
        return rc;
    dcmc_status st = DCMC_OK;
    if (b->secret.have_key) {
        st = dcmc_uid_key_from_key(&b->secret.key, b->uid_key);
    } else {
        st = dcmc_uid_key_from_passphrase(b->secret.pass, b->secret.pass_len, b->uid_key);
        if (st == DCMC_OK && c->encrypt) {
            /* One salt for the run: scrypt once, not once per file. Each file still records it. */
            dcmc_key k;
            char msg[128];
            st = dcmc_kdf_new_scrypt(&b->enc_kdf);
            if (st == DCMC_OK)
                st = batch_own_key(b, &k, msg, sizeof msg);
            dcmc_wipe(&k, sizeof k);
        }
    }
    if (st != DCMC_OK) {
        cli_error(c, "key derivation failed: %s", dcmc_status_str(st));
        return EXIT_KEY;
    }
    return -1;
}

void batch_keys_free(batch *b)
{
    cli_secret_free(&b->secret);
    dcmc_wipe(b->uid_key, sizeof b->uid_key);
    dcmc_wipe(b->cache, sizeof b->cache);
    dcmc_wipe(&b->enc_kdf, sizeof b->enc_kdf);
}

/*
 * Loaded KeyTables, SigningTables and private keys, kept for the life of a
 * process so that nothing is parsed per message, and reloaded when their
 * file changes (device, inode, size, mtime or ctime differ: an edit, a
 * replacement by rename, a chmod), so a key rotation needs no restart.
 *
 * Plain C without Dovecot dependencies (unit-tested in
 * tests/unit/test-keytable-cache.c).  Not thread-safe: one cache per
 * process, used by one thread.
 */
#ifndef DKIM_KEYTABLE_CACHE_H
#define DKIM_KEYTABLE_CACHE_H

#include "dkim-keytable.h"

struct dkim_keytable_cache;

struct dkim_keytable_cache *dkim_keytable_cache_new(void);
void dkim_keytable_cache_free(struct dkim_keytable_cache **cache);

/* Each getter checks the file (one stat()) and returns the cached object,
 * loading it first if it is new or changed.  A file that can no longer be
 * read or parsed is an error, also when an older version was cached:
 * signing on with a key the administrator replaced would be wrong.
 *
 * The returned pointers stay valid until dkim_keytable_cache_release(),
 * even if a later call reloads the same file. */
int dkim_keytable_cache_keytable(struct dkim_keytable_cache *cache,
				 const char *path,
				 const struct dkim_keytable **table_r,
				 struct dkim_error *error);
/* *loaded_r is true when this call (re)loaded the table: the time to
 * report its dkim_signingtable_warnings(), once per load. */
int dkim_keytable_cache_signingtable(struct dkim_keytable_cache *cache,
				     const char *path,
				     enum dkim_table_kind kind,
				     const struct dkim_signingtable **table_r,
				     bool *loaded_r,
				     struct dkim_error *error);
/* `flags` are dkim_privkey_flags (DKIM_PRIVKEY_ALLOW_UNSAFE).  A key that
 * is not a file (KeyTable entries may hold the key itself: base64 of a
 * PKCS#8 or PKCS#1 DER key, or of an Ed25519 seed) is parsed once and
 * kept as long as the process lives. */
int dkim_keytable_cache_privkey(struct dkim_keytable_cache *cache,
				const char *key, bool key_is_file,
				unsigned flags, const dkim_privkey **key_r,
				struct dkim_error *error);

/* Frees the objects that reloads replaced.  Call it when no pointer
 * obtained before is in use any more (after each message). */
void dkim_keytable_cache_release(struct dkim_keytable_cache *cache);

/* Number of file loads so far (first loads and reloads). */
unsigned dkim_keytable_cache_load_count(const struct dkim_keytable_cache *cache);

#endif

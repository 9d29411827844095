/*
 * KeyTable and SigningTable served one key at a time by a key-value store
 * ("dict:" tables, dkim-keytable.h), through a per-process cache whose
 * entries live for a TTL.
 *
 * The layout inside the store, the same for every backend (the Dovecot
 * side puts its dict's "shared/" in front of each key):
 *
 *   dkim/signing/<key>   a list of key names separated by commas (and
 *                        blanks), for <key> in the order of
 *                        dkim_dict_signing_keys(): the From address, its
 *                        domain, each parent domain, "*" (all lowercase).
 *                        The first key found applies (every one found,
 *                        with all_matches); an empty list stops the
 *                        lookup with no key: mail from that address or
 *                        domain is not signed.
 *   dkim/key/<keyname>   "DOMAIN:SELECTOR:KEY", KEY a key file name or the
 *                        private key itself (PEM, or base64 as in a
 *                        KeyTable file); DOMAIN "%" and '%' in a file name
 *                        as in KeyTable files.
 *   dkim/note/<keyname>  free text about a key for dkim-keys(1) (when it
 *                        was made, when it may be removed); signing never
 *                        reads it.
 *
 * Plain C without Dovecot (unit-tested in tests/unit/test-keyed-table.c):
 * the store is a callback.  Not thread-safe: one cache per process.
 */
#ifndef DKIM_KEYED_TABLE_H
#define DKIM_KEYED_TABLE_H

#include "dkim-keytable.h"

#include <time.h>

#define DKIM_KEYED_SIGNING_PREFIX "dkim/signing/"
#define DKIM_KEYED_KEY_PREFIX "dkim/key/"
#define DKIM_KEYED_NOTE_PREFIX "dkim/note/"

/* Dovecot 2.4 configurations hold the dict of "dict:NAME" in the filter
 * "dkim_dict NAME { dict DRIVER { ... } }": the plugin opens it from
 * there, dkim-keys(1) reaches it as "doveadm dict ... dkim_dict/NAME". */
#define DKIM_DICT_FILTER_NAME "dkim_dict"

/* How long a looked-up entry (or the absence of one) is used without
 * asking the store again, unless configured otherwise. */
#define DKIM_KEYED_DEFAULT_TTL_SECS 60
/* Longest value taken from a store (a PEM RSA-8192 key is under 7 KB):
 * a longer one is an error, not a reason to hold megabytes per entry. */
#define DKIM_KEYED_MAX_VALUE_SIZE (64 * 1024)
/* The cache's memory bound (keys and values); when an entry would pass
 * it, the expired entries go, and if that is not enough, all of them. */
#define DKIM_KEYED_CACHE_MAX_BYTES (8 * 1024 * 1024)

struct dkim_keyed_store {
	/* Names the store in errors and tells stores apart in the cache,
	 * e.g. "dict:proxy::dkim". */
	const char *name;
	/* Looks up `key` (e.g. "dkim/key/sel._domainkey.example.com").
	 * Returns 1 with *value_r set (the store's, valid until its next
	 * lookup: the cache copies it), 0 when the store has no such key,
	 * -1 with error set when the store cannot answer. */
	int (*lookup)(void *context, const char *key, const char **value_r,
		      struct dkim_error *error);
	void *context;
};

/* The key names of a dkim/signing/ value: lowercase, in order, empty
 * items left out.  NULL-terminated; free it with
 * dkim_table_strings_free(). */
char **dkim_keyed_names_parse(const char *value);
/* The value for a list of key names: "name1, name2".  malloc()ed. */
char *dkim_keyed_names_format(const char *const *names);

struct dkim_keyed_cache;

struct dkim_keyed_cache *dkim_keyed_cache_new(void);
void dkim_keyed_cache_free(struct dkim_keyed_cache **cache);
/* Number of times the cache asked a store so far. */
unsigned dkim_keyed_cache_lookup_count(const struct dkim_keyed_cache *cache);

/* One message's way to a store: through `cache`, as of `now`.  An entry
 * fetched less than ttl_secs before now is used as it is; an older one is
 * asked for again, and if the store then fails, that is an error (an
 * expired entry is never used).  ttl_secs 0 asks the store every time.
 * Failed lookups are not cached. */
struct dkim_keyed_reader {
	struct dkim_keyed_cache *cache;
	const struct dkim_keyed_store *store;
	time_t now;
	unsigned ttl_secs;
};

/* Returns 1 with *value_r set (valid until the next call with the same
 * cache), 0 when the store has no such key, -1 with error set. */
int dkim_keyed_lookup(const struct dkim_keyed_reader *reader,
		      const char *key, const char **value_r,
		      struct dkim_error *error);

/* The SigningTable entries (kind DKIM_TABLE_DICT) that apply to a From
 * address (local@domain): the first key of dkim_dict_signing_keys() the
 * store has, or with all_matches every one.  Returns 0 with *table_r set
 * (free it with dkim_signingtable_free()), -1 with error set when the
 * store fails or a key name cannot be looked up (it holds a '/' or a
 * control character). */
int dkim_keyed_signingtable(const struct dkim_keyed_reader *reader,
			    const char *address, bool all_matches,
			    struct dkim_signingtable **table_r,
			    struct dkim_error *error);

/* The KeyTable entries that dkim_keytable_select() will ask for when
 * `signingtable` (from a store or a file) chooses keys for `address`: a
 * name the store lacks is left out, so that the selection reports it as
 * a key missing from the KeyTable.  Returns 0 with *table_r set (free it
 * with dkim_keytable_free()), -1 with error set when the store fails or
 * an entry is malformed. */
int dkim_keyed_keytable(const struct dkim_keyed_reader *reader,
			const struct dkim_signingtable *signingtable,
			const char *address, bool all_matches,
			struct dkim_keytable **table_r,
			struct dkim_error *error);

#endif

/*
 * The milter's signing keys: chosen by the KeyTable and SigningTable (the
 * keytable library the submission plugin uses), or by Domain, KeyFile and
 * Selector.  Tables and keys are loaded once and reloaded when their files
 * change (dkim-keytable-cache.h).  libmilter runs every connection in a
 * thread of its own, so the one cache is used under a lock.
 */
#ifndef MILTER_KEYS_H
#define MILTER_KEYS_H

#include "dkim.h"
#include "milter-config.h"

#include <stdbool.h>
#include <stddef.h>

struct milter_key {
	char *domain;		/* d= */
	char *selector;		/* s= */
	char *identity;		/* i=, or NULL */
	/* read-only, shared between threads; valid until
	 * milter_keys_end() */
	const dkim_privkey *key;
};

struct milter_keyset {
	struct milter_key *keys;
	size_t count;
};

/* Once, before any thread uses keys; the configuration must outlive
 * milter_keys_deinit(). */
void milter_keys_init(const struct milter_config *config);
void milter_keys_deinit(void);

/* A message that signs holds keys from milter_keys_begin() until it is
 * done with them, milter_keys_end(): keys that a reload replaced are
 * freed once no message holds any. */
void milter_keys_begin(void);
void milter_keys_end(void);

/* Adds the keys that sign mail from `address` (local@domain): what the
 * SigningTable chooses, or the one KeyFile when the domain is in Domain
 * (SubDomains: or below one of them; d= is then the listed domain).
 * Returns -1 with `error` set when a table or key cannot be used; no
 * matching entry adds nothing. */
int milter_keys_for_address(const char *address, struct milter_keyset *keys,
			    struct dkim_error *error);
/* Adds the KeyTable key `keyname`, as a SigningTable line naming it would
 * choose it for `address` ('%' is the address' domain).  Without a
 * KeyTable, the keys for `address`. */
int milter_keys_by_name(const char *keyname, const char *address,
			struct milter_keyset *keys, struct dkim_error *error);
/* Adds a key (the strings are copied). */
void milter_keyset_add(struct milter_keyset *keys, const char *domain,
		       const char *selector, const char *identity,
		       const dkim_privkey *key);
void milter_keyset_free(struct milter_keyset *keys);

/* At start-up and for -n: loads every table and key the configuration
 * names, so that a bad key is reported now and not with the first
 * message (and the first messages find them loaded). */
void milter_keys_check(const struct milter_config *config,
		       struct milter_problems *problems);

#endif

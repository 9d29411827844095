#ifndef DKIM_SETTINGS_H
#define DKIM_SETTINGS_H

/* The dkim_* settings: the one list of them, and the one way to read their
   values.  Defaults and limits are documented in dovecot-dkim(7) and
   dovecot-dkim-submission(7).

   Every setting is a string in the configuration, on both Dovecot
   versions; an empty value means "unset: use the default" (Dovecot 2.4 has
   no other way to say unset), and a list setting takes "none" for the
   empty list.  The plugins turn the strings into typed settings with the
   dkim_setting_read_*() functions below, so that yes/no, numbers, times
   and lists follow the same rules in every plugin. */

#include "settings-parser.h"
#include "dkim.h"

struct event;
struct mail_user;

/* Every dkim_* setting as its configuration spells it, "" when unset.  On
   Dovecot 2.4 the settings module declares exactly these fields to the
   config process (dkim_setting_defines), so doveconf lists them and refuses
   misspelled names. */
struct dkim_setting_strings {
	pool_t pool;

	/* Verification at delivery and in Sieve */
	const char *verify;
	const char *arc;
	const char *authserv_id;
	const char *dns_resolver;
	const char *dns_trust_anchor;
	const char *dns_table;
	const char *dns_timeout;
	const char *max_signatures;
	const char *min_key_bits;
	const char *body_length;
	const char *clock_drift;

	/* Signing in the submission service */
	const char *sign;
	const char *sign_failure;
	const char *sign_unauthorized;
	const char *sign_from;
	const char *keytable;
	const char *signingtable;
	const char *table_cache_ttl;
	const char *sign_domain;
	const char *sign_selector;
	const char *sign_key;
	const char *multiple_signatures;
	const char *sign_headers;
	const char *oversign_headers;
	const char *sign_canonicalization;
	const char *sign_expire;
	const char *sign_allow_unsafe_keys;
};

/* The setting names ("dkim_verify", ...) and where each value lives in
   struct dkim_setting_strings, ending with SETTING_DEFINE_LIST_END. */
extern const struct setting_define dkim_setting_defines[];
extern const struct dkim_setting_strings dkim_setting_strings_defaults;

/* "dkim_verify", (strings)->verify: the arguments that name a setting and
   give its value to the dkim_setting_read_*() functions. */
#define DKIM_SETTING(strings, field) "dkim_" #field, (strings)->field

/*
 * Reading values
 */

/* Collects the problems found while reading (each "dkim_x: why"), so that
   the caller decides what a configuration mistake does: the delivery side
   logs them and uses the defaults, since a mistake must never make a
   delivery fail; the submission side refuses to sign with a configuration
   it does not understand. */
struct dkim_setting_reader {
	pool_t pool;
	ARRAY_TYPE(const_string) errors;
};

void dkim_setting_reader_init(struct dkim_setting_reader *reader, pool_t pool);

/* Each function leaves *value_r untouched when the setting is unset ("")
   or its value is invalid (then recorded as an error). */

/* yes or no, in any case: what Dovecot documents for its own booleans */
void dkim_setting_read_bool(struct dkim_setting_reader *reader,
			    const char *name, const char *value,
			    bool *value_r);
void dkim_setting_read_uint(struct dkim_setting_reader *reader,
			    const char *name, const char *value,
			    unsigned int min, unsigned int max,
			    unsigned int *value_r);
/* A duration as Dovecot reads its own ("5s", "300 ms", "2 mins"). */
void dkim_setting_read_msecs(struct dkim_setting_reader *reader,
			     const char *name, const char *value,
			     unsigned int min_msecs, unsigned int max_msecs,
			     unsigned int *msecs_r);
/* One of `choices` (NULL-terminated, case-insensitive): its index. */
void dkim_setting_read_choice(struct dkim_setting_reader *reader,
			      const char *name, const char *value,
			      const char *const *choices,
			      unsigned int *index_r);
/* A list separated by spaces, commas or colons (OpenDKIM writes
   "SignHeaders From,To", DKIM's h= uses colons), or "none" for the empty
   list.  Returns NULL when unset. */
const char *const *
dkim_setting_read_list(struct dkim_setting_reader *reader, const char *name,
		       const char *value);
/* The value copied to the reader's pool, or NULL when unset. */
const char *dkim_setting_read_str(struct dkim_setting_reader *reader,
				  const char *value);
void dkim_setting_reader_error(struct dkim_setting_reader *reader,
			       const char *name, const char *fmt, ...)
	ATTR_FORMAT(3, 4);

/* 2.3: logs a warning on event for each dkim_* name in the user's plugin
   settings and userdb fields that is not a setting (a misspelling would
   otherwise be ignored without a word), once per name and process. */
void dkim_settings_warn_unknown(struct mail_user *user, struct event *event);

/*
 * Verification settings (delivery plugin and Sieve extension)
 */

/* Defaults documented in dovecot-dkim(7) and conf/90-dkim.conf. */
#define DKIM_SETTINGS_DEFAULT_DNS_TIMEOUT_MSECS 5000

struct dkim_verify_settings {
	/* dkim_verify: FALSE means no DKIM work at all for this user. */
	bool verify;
	/* dkim_authserv_id, or NULL when unset (the caller's default is
	   Dovecot's hostname). */
	const char *authserv_id;
	/* dkim_dns_resolver, dkim_dns_trust_anchor, dkim_dns_table */
	struct dkim_resolver_config dns;
	/* dkim_arc, dkim_dns_timeout, dkim_max_signatures,
	   dkim_min_key_bits, dkim_body_length, dkim_clock_drift */
	struct dkim_verify_config verify_config;
};

/* Reads the user's verification settings into set_r, with strings from
   pool.  An invalid value is logged as an error on event and replaced by
   its default: a configuration mistake must never make a delivery
   fail. */
void dkim_verify_settings_read(struct mail_user *user, pool_t pool,
			       struct event *event,
			       struct dkim_verify_settings *set_r);

/* A string that differs whenever two settings would verify a message
   differently (DNS configuration and verification limits; not the
   authserv-id).  Allocated from the data stack. */
const char *
dkim_verify_settings_key(const struct dkim_verify_settings *set);
/* The same for the DNS configuration alone. */
const char *dkim_dns_config_key(const struct dkim_resolver_config *dns);

#endif

#ifndef SUBMISSION_DKIM_SETTINGS_H
#define SUBMISSION_DKIM_SETTINGS_H

#include "dkim.h"
#include "dkim-keytable.h"

struct mail_user;
struct event;

/* What to do with a message whose From the user may not sign for, or
 * that has no single From address. */
enum submission_dkim_unauthorized {
	SUBMISSION_DKIM_UNAUTHORIZED_UNSIGNED = 0,	/* relay it unsigned */
	SUBMISSION_DKIM_UNAUTHORIZED_REJECT,		/* 550 5.7.1 */
};

/* What to do when signing fails (unreadable key, broken table, internal
 * error). */
enum submission_dkim_failure {
	SUBMISSION_DKIM_FAILURE_TEMPFAIL = 0,		/* 451 4.3.0 */
	SUBMISSION_DKIM_FAILURE_UNSIGNED,		/* relay unsigned */
};

/* The plugin's settings for one user: the configuration, overridden by
 * userdb fields of the same names.  All strings live in the pool given to
 * submission_dkim_settings_read(). */
struct submission_dkim_settings {
	bool sign;

	/* OpenDKIM tables (a file path, or the name of a dict) ... */
	const char *keytable_path;
	enum dkim_table_kind keytable_kind;
	const char *signingtable_path;
	enum dkim_table_kind signingtable_kind;
	bool multiple_signatures;
	/* how long dict lookups are cached */
	unsigned int table_cache_ttl_secs;
	/* ... or one key for one domain */
	const char *domain;
	const char *selector;
	const char *key_path;

	/* NULL-terminated; NULL means dkimcore's defaults */
	const char *const *headers;
	const char *const *oversign_headers;
	enum dkim_canon header_canon, body_canon;
	unsigned int expire_secs;
	unsigned int privkey_flags;

	/* Address patterns the user may sign for besides their own domain */
	const char *const *sign_from;
	enum submission_dkim_unauthorized unauthorized;
	enum submission_dkim_failure failure;

	/* A configuration mistake.  When set, every message is handled as a
	 * signing failure with this text as the reason, so the mistake is
	 * logged where the administrator looks, and the failure setting
	 * decides between 451 and unsigned. */
	const char *error;
};

/* Reads the user's settings; a misspelled dkim_* name is logged as a
 * warning on event (Dovecot 2.3; 2.4's doveconf refuses it). */
void submission_dkim_settings_read(struct mail_user *user, pool_t pool,
				   struct event *event,
				   struct submission_dkim_settings *set_r);

#endif

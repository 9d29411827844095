/* Reading the submission_dkim settings, with the readers every plugin
 * uses (dkim-settings.h). */
#include "lib.h"
#include "array.h"
#include "str-sanitize.h"
#include "mail-user.h"
#include "dkim-dovecot-version.h"
#include "dkim-settings.h"
#include "dkim-keyed-table.h"
#include "dkim-keytable.h"
#include "submission-dkim-settings.h"

/* Longest x= offset accepted: a year. */
#define SUBMISSION_DKIM_MAX_EXPIRE_SECS (366 * 24 * 60 * 60)
/* Longest dkim_table_cache_ttl: a day. */
#define SUBMISSION_DKIM_MAX_TABLE_CACHE_TTL_SECS (24 * 60 * 60)

static void
read_tables(struct dkim_setting_reader *reader,
	    const struct dkim_setting_strings *strings,
	    struct submission_dkim_settings *set)
{
	const char *keytable = dkim_setting_read_str(reader, strings->keytable);
	const char *signingtable =
		dkim_setting_read_str(reader, strings->signingtable);
	unsigned int ttl_msecs = DKIM_KEYED_DEFAULT_TTL_SECS * 1000U;
	struct dkim_error error;

	set->domain = dkim_setting_read_str(reader, strings->sign_domain);
	set->selector = dkim_setting_read_str(reader, strings->sign_selector);
	set->key_path = dkim_setting_read_str(reader, strings->sign_key);
	dkim_setting_read_bool(reader,
			       DKIM_SETTING(strings, multiple_signatures),
			       &set->multiple_signatures);

	/* The one-domain settings win over the tables, so that a userdb can
	   give one user their own key while the configuration sets the
	   tables for everyone (a userdb field cannot unset a setting). */
	if (set->domain != NULL || set->selector != NULL ||
	    set->key_path != NULL) {
		if (set->domain == NULL || set->selector == NULL ||
		    set->key_path == NULL) {
			dkim_setting_reader_error(reader, "dkim_sign_domain",
				"dkim_sign_domain, dkim_sign_selector and "
				"dkim_sign_key must be set together");
		} else if (set->key_path[0] != '/') {
			dkim_setting_reader_error(reader, "dkim_sign_key",
				"'%s' is not an absolute path", set->key_path);
		}
	} else if (keytable == NULL && signingtable == NULL) {
		dkim_setting_reader_error(reader, "dkim_keytable",
			"no key configured: set dkim_keytable and "
			"dkim_signingtable, or dkim_sign_domain, "
			"dkim_sign_selector and dkim_sign_key (or "
			"dkim_sign = no for this user)");
	} else if (keytable == NULL || signingtable == NULL) {
		dkim_setting_reader_error(reader, "dkim_keytable",
			"dkim_keytable and dkim_signingtable must be set "
			"together");
	} else if (dkim_table_spec_parse(keytable, &set->keytable_kind,
					 &set->keytable_path, &error) < 0) {
		dkim_setting_reader_error(reader, "dkim_keytable", "%s",
					  error.text);
	} else if (dkim_table_spec_parse(signingtable,
					 &set->signingtable_kind,
					 &set->signingtable_path,
					 &error) < 0) {
		dkim_setting_reader_error(reader, "dkim_signingtable", "%s",
					  error.text);
	}
	dkim_setting_read_msecs(reader, DKIM_SETTING(strings, table_cache_ttl),
		0, SUBMISSION_DKIM_MAX_TABLE_CACHE_TTL_SECS * 1000U,
		&ttl_msecs);
	set->table_cache_ttl_secs = ttl_msecs / 1000;
}

static void
read_signing(struct dkim_setting_reader *reader,
	     const struct dkim_setting_strings *strings,
	     struct submission_dkim_settings *set)
{
	const char *canon =
		dkim_setting_read_str(reader, strings->sign_canonicalization);
	unsigned int expire_msecs = 0;
	bool allow_unsafe_keys = FALSE;

	set->headers = dkim_setting_read_list(reader,
		DKIM_SETTING(strings, sign_headers));
	set->oversign_headers = dkim_setting_read_list(reader,
		DKIM_SETTING(strings, oversign_headers));
	if (set->headers != NULL && set->headers[0] == NULL) {
		dkim_setting_reader_error(reader, "dkim_sign_headers",
			"the list is empty (From is always signed; leave it "
			"unset for the default list)");
	}

	set->header_canon = DKIM_CANON_RELAXED;
	set->body_canon = DKIM_CANON_RELAXED;
	if (canon != NULL &&
	    !dkim_canon_parse(canon, &set->header_canon, &set->body_canon)) {
		dkim_setting_reader_error(reader, "dkim_sign_canonicalization",
			"'%s' is not simple or relaxed, or two of them joined "
			"by '/'", canon);
	}
	dkim_setting_read_msecs(reader, DKIM_SETTING(strings, sign_expire), 0,
				SUBMISSION_DKIM_MAX_EXPIRE_SECS * 1000U,
				&expire_msecs);
	set->expire_secs = expire_msecs / 1000;
	dkim_setting_read_bool(reader,
			       DKIM_SETTING(strings, sign_allow_unsafe_keys),
			       &allow_unsafe_keys);
	if (allow_unsafe_keys)
		set->privkey_flags |= DKIM_PRIVKEY_ALLOW_UNSAFE;
}

static void
submission_dkim_settings_parse(const struct dkim_setting_strings *strings,
			       struct dkim_setting_reader *reader,
			       struct submission_dkim_settings *set_r)
{
	static const char *const unauthorized_choices[] = {
		[SUBMISSION_DKIM_UNAUTHORIZED_UNSIGNED] = "unsigned",
		[SUBMISSION_DKIM_UNAUTHORIZED_REJECT] = "reject",
		NULL
	};
	static const char *const failure_choices[] = {
		[SUBMISSION_DKIM_FAILURE_TEMPFAIL] = "tempfail",
		[SUBMISSION_DKIM_FAILURE_UNSIGNED] = "unsigned",
		NULL
	};
	unsigned int choice;

	set_r->sign = TRUE;
	dkim_setting_read_bool(reader, DKIM_SETTING(strings, sign),
			       &set_r->sign);
	choice = SUBMISSION_DKIM_FAILURE_TEMPFAIL;
	dkim_setting_read_choice(reader, DKIM_SETTING(strings, sign_failure),
				 failure_choices, &choice);
	set_r->failure = choice;
	if (!set_r->sign)
		return;
	choice = SUBMISSION_DKIM_UNAUTHORIZED_UNSIGNED;
	dkim_setting_read_choice(reader,
				 DKIM_SETTING(strings, sign_unauthorized),
				 unauthorized_choices, &choice);
	set_r->unauthorized = choice;
	set_r->sign_from = dkim_setting_read_list(reader,
		DKIM_SETTING(strings, sign_from));
	read_tables(reader, strings, set_r);
	read_signing(reader, strings, set_r);
}

/* A pattern such as "*example.com" also lets the user sign for
   evil-example.com, which the administrator hardly meant: said for each
   session, since dkim_sign_from may come from the user's userdb fields. */
static void
warn_unanchored_sign_from(struct event *event, const char *const *patterns)
{
	char why[DKIM_WILDCARD_WARNING_MAX];

	for (; patterns != NULL && *patterns != NULL; patterns++) {
		if (dkim_wildcard_unanchored(*patterns, why, sizeof(why)))
			e_warning(event, "dkim_sign_from: %s",
				  str_sanitize(why, sizeof(why)));
	}
}

void
submission_dkim_settings_read(struct mail_user *user, pool_t pool,
			      struct event *event,
			      struct submission_dkim_settings *set_r)
{
	const struct dkim_setting_strings *strings;
	struct dkim_setting_reader reader;
	const char *error;

	i_zero(set_r);
	dkim_setting_reader_init(&reader, pool);
	dkim_settings_warn_unknown(user, event);
	if (dkim_user_setting_strings_get(user, &strings, &error) < 0) {
		set_r->sign = TRUE;
		set_r->error = p_strdup_printf(pool, "cannot read the "
			"dkim_* settings: %s", error);
		return;
	}
	submission_dkim_settings_parse(strings, &reader, set_r);
	dkim_user_setting_strings_free(&strings);
	warn_unanchored_sign_from(event, set_r->sign_from);
	if (array_count(&reader.errors) > 0)
		set_r->error = array_idx_elem(&reader.errors, 0);
}

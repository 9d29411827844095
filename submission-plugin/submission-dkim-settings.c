/* Reading the submission_dkim settings.  All access to Dovecot's settings
 * is here, so a port to Dovecot 2.4's settings_get() touches one file. */
#include "lib.h"
#include "settings-parser.h"
#include "mail-user.h"
#include "submission-dkim-settings.h"

struct settings_reader {
	struct mail_user *user;
	pool_t pool;
	/* the first mistake found; later ones are not worth the noise */
	const char *error;
};

static void ATTR_FORMAT(2, 3)
reader_error(struct settings_reader *reader, const char *fmt, ...)
{
	va_list args;

	if (reader->error != NULL)
		return;
	va_start(args, fmt);
	reader->error = p_strdup_vprintf(reader->pool, fmt, args);
	va_end(args);
}

/* The value, or NULL when unset or empty. */
static const char *
get_str(struct settings_reader *reader, const char *name)
{
	const char *value = mail_user_plugin_getenv(reader->user, name);

	return value == NULL || *value == '\0' ? NULL :
		p_strdup(reader->pool, value);
}

static bool
get_bool(struct settings_reader *reader, const char *name, bool default_value)
{
	const char *value = get_str(reader, name);

	if (value == NULL)
		return default_value;
	if (strcasecmp(value, "yes") == 0 || strcmp(value, "1") == 0 ||
	    strcasecmp(value, "true") == 0)
		return TRUE;
	if (strcasecmp(value, "no") == 0 || strcmp(value, "0") == 0 ||
	    strcasecmp(value, "false") == 0)
		return FALSE;
	reader_error(reader, "%s: '%s' is not yes or no", name, value);
	return default_value;
}

/* One of `choices` (index returned), or `default_index`. */
static unsigned int
get_choice(struct settings_reader *reader, const char *name,
	   const char *const *choices, unsigned int default_index)
{
	const char *value = get_str(reader, name);

	if (value == NULL)
		return default_index;
	for (unsigned int i = 0; choices[i] != NULL; i++) {
		if (strcasecmp(value, choices[i]) == 0)
			return i;
	}
	reader_error(reader, "%s: '%s' is not one of: %s", name, value,
		     t_strarray_join(choices, ", "));
	return default_index;
}

/* A list separated by spaces, commas or colons (OpenDKIM writes
 * "SignHeaders From,To", DKIM's h= uses colons).  NULL when unset; an
 * empty list when set to "" (no oversigning, say). */
static const char *const *
get_list(struct settings_reader *reader, const char *name)
{
	const char *value = mail_user_plugin_getenv(reader->user, name);

	if (value == NULL)
		return NULL;
	return (const char *const *)p_strsplit_spaces(reader->pool, value,
						      " \t,:");
}

static void
read_tables(struct settings_reader *reader,
	    struct submission_dkim_settings *set)
{
	const char *keytable = get_str(reader, "dkim_keytable");
	const char *signingtable = get_str(reader, "dkim_signingtable");
	enum dkim_table_kind keytable_kind;
	struct dkim_error error;

	set->domain = get_str(reader, "dkim_sign_domain");
	set->selector = get_str(reader, "dkim_sign_selector");
	set->key_path = get_str(reader, "dkim_sign_key");
	set->multiple_signatures =
		get_bool(reader, "dkim_multiple_signatures", FALSE);

	/* The one-domain settings win over the tables, so that a userdb can
	   give one user their own key while plugin {} sets the tables for
	   everyone (a userdb field cannot unset a plugin setting). */
	if (set->domain != NULL || set->selector != NULL ||
	    set->key_path != NULL) {
		if (set->domain == NULL || set->selector == NULL ||
		    set->key_path == NULL) {
			reader_error(reader, "dkim_sign_domain, "
				     "dkim_sign_selector and dkim_sign_key "
				     "must be set together");
		} else if (set->key_path[0] != '/') {
			reader_error(reader, "dkim_sign_key: '%s' is not an "
				     "absolute path", set->key_path);
		}
	} else if (keytable == NULL && signingtable == NULL) {
		reader_error(reader, "no key configured: set dkim_keytable "
			     "and dkim_signingtable, or dkim_sign_domain, "
			     "dkim_sign_selector and dkim_sign_key (or "
			     "dkim_sign = no for this user)");
	} else if (keytable == NULL || signingtable == NULL) {
		reader_error(reader, "dkim_keytable and dkim_signingtable "
			     "must be set together");
	} else if (dkim_table_spec_parse(keytable, &keytable_kind,
					 &set->keytable_path, &error) < 0) {
		reader_error(reader, "dkim_keytable: %s", error.text);
	} else if (dkim_table_spec_parse(signingtable,
					 &set->signingtable_kind,
					 &set->signingtable_path,
					 &error) < 0) {
		reader_error(reader, "dkim_signingtable: %s", error.text);
	}
}

static void
read_signing(struct settings_reader *reader,
	     struct submission_dkim_settings *set)
{
	const char *canon = get_str(reader, "dkim_sign_canonicalization");
	const char *expire = get_str(reader, "dkim_sign_expire");
	const char *error;

	set->headers = get_list(reader, "dkim_sign_headers");
	set->oversign_headers = get_list(reader, "dkim_oversign_headers");
	if (set->headers != NULL && set->headers[0] == NULL)
		reader_error(reader, "dkim_sign_headers is empty");

	set->header_canon = DKIM_CANON_RELAXED;
	set->body_canon = DKIM_CANON_RELAXED;
	if (canon != NULL &&
	    !dkim_canon_parse(canon, &set->header_canon, &set->body_canon)) {
		reader_error(reader, "dkim_sign_canonicalization: '%s' is not "
			     "simple or relaxed, or two of them joined by "
			     "'/'", canon);
	}
	if (expire != NULL &&
	    settings_get_time(expire, &set->expire_secs, &error) < 0)
		reader_error(reader, "dkim_sign_expire: %s", error);
	if (get_bool(reader, "dkim_sign_allow_unsafe_keys", FALSE))
		set->privkey_flags |= DKIM_PRIVKEY_ALLOW_UNSAFE;
}

void
submission_dkim_settings_read(struct mail_user *user, pool_t pool,
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
	struct settings_reader reader = { .user = user, .pool = pool };

	i_zero(set_r);
	set_r->sign = get_bool(&reader, "dkim_sign", TRUE);
	set_r->failure = get_choice(&reader, "dkim_sign_failure",
				    failure_choices,
				    SUBMISSION_DKIM_FAILURE_TEMPFAIL);
	if (!set_r->sign)
		return;
	set_r->unauthorized = get_choice(&reader, "dkim_sign_unauthorized",
					 unauthorized_choices,
					 SUBMISSION_DKIM_UNAUTHORIZED_UNSIGNED);
	set_r->sign_from = get_list(&reader, "dkim_sign_from");
	read_tables(&reader, set_r);
	read_signing(&reader, set_r);
	set_r->error = reader.error;
}

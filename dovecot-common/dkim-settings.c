/* Reading the dkim_* settings; see dkim-settings.h. */

#include "lib.h"
#include "array.h"
#include "str.h"
#include "strescape.h"
#include "strnum.h"
#include "str-sanitize.h"
#include "hash.h"
#include "settings-parser.h"
#include "mail-user.h"
#include "dkim-dovecot-version.h"
#include "dkim-settings.h"

/* Limits for the numeric verification settings (see dovecot-dkim(7)). */
#define DKIM_SETTINGS_MAX_DNS_TIMEOUT_MSECS (60 * 1000)
#define DKIM_SETTINGS_MAX_CLOCK_DRIFT_SECS (24 * 60 * 60)

/* How a list setting says "the empty list". */
#define DKIM_SETTING_LIST_NONE "none"
/* Setting values quoted in error messages are cut to this length. */
#define DKIM_SETTING_MAX_QUOTED 80

void dkim_setting_reader_init(struct dkim_setting_reader *reader, pool_t pool)
{
	i_zero(reader);
	reader->pool = pool;
	p_array_init(&reader->errors, pool, 2);
}

void dkim_setting_reader_error(struct dkim_setting_reader *reader,
			       const char *name, const char *fmt, ...)
{
	const char *error;
	va_list args;

	va_start(args, fmt);
	error = p_strdup_printf(reader->pool, "%s: %s", name,
				t_strdup_vprintf(fmt, args));
	va_end(args);
	array_push_back(&reader->errors, &error);
}

static void
reader_invalid(struct dkim_setting_reader *reader, const char *name,
	       const char *value, const char *expected)
{
	dkim_setting_reader_error(reader, name, "Invalid value '%s': %s",
		str_sanitize(value, DKIM_SETTING_MAX_QUOTED), expected);
}

void dkim_setting_read_bool(struct dkim_setting_reader *reader,
			    const char *name, const char *value,
			    bool *value_r)
{
	if (*value == '\0')
		return;
	if (strcasecmp(value, "yes") == 0)
		*value_r = TRUE;
	else if (strcasecmp(value, "no") == 0)
		*value_r = FALSE;
	else
		reader_invalid(reader, name, value, "expected yes or no");
}

void dkim_setting_read_uint(struct dkim_setting_reader *reader,
			    const char *name, const char *value,
			    unsigned int min, unsigned int max,
			    unsigned int *value_r)
{
	unsigned int num;

	if (*value == '\0')
		return;
	if (str_to_uint(value, &num) < 0 || num < min || num > max) {
		reader_invalid(reader, name, value, t_strdup_printf(
			"expected a number from %u to %u", min, max));
		return;
	}
	*value_r = num;
}

void dkim_setting_read_msecs(struct dkim_setting_reader *reader,
			     const char *name, const char *value,
			     unsigned int min_msecs, unsigned int max_msecs,
			     unsigned int *msecs_r)
{
	const char *error;
	unsigned int msecs;

	if (*value == '\0')
		return;
	if (dkim_parse_interval_msecs(value, &msecs, &error) < 0) {
		reader_invalid(reader, name, value, error);
		return;
	}
	if (msecs < min_msecs || msecs > max_msecs) {
		reader_invalid(reader, name, value, t_strdup_printf(
			"expected %u ms to %u s", min_msecs,
			max_msecs / 1000));
		return;
	}
	*msecs_r = msecs;
}

void dkim_setting_read_choice(struct dkim_setting_reader *reader,
			      const char *name, const char *value,
			      const char *const *choices,
			      unsigned int *index_r)
{
	if (*value == '\0')
		return;
	for (unsigned int i = 0; choices[i] != NULL; i++) {
		if (strcasecmp(value, choices[i]) == 0) {
			*index_r = i;
			return;
		}
	}
	reader_invalid(reader, name, value, t_strdup_printf(
		"expected one of: %s", t_strarray_join(choices, ", ")));
}

const char *const *
dkim_setting_read_list(struct dkim_setting_reader *reader,
		       const char *name ATTR_UNUSED, const char *value)
{
	if (*value == '\0')
		return NULL;
	if (strcasecmp(value, DKIM_SETTING_LIST_NONE) == 0)
		return p_new(reader->pool, const char *, 1);
	return (const char *const *)p_strsplit_spaces(reader->pool, value,
						      " \t,:");
}

const char *
dkim_setting_read_str(struct dkim_setting_reader *reader, const char *value)
{
	return *value == '\0' ? NULL : p_strdup(reader->pool, value);
}

void dkim_settings_warn_unknown(struct mail_user *user, struct event *event)
{
	/* names already warned about in this process */
	static HASH_TABLE(char *, char *) warned;
	const char *const *names = dkim_user_unknown_setting_names(user);

	for (; *names != NULL; names++) {
		if (!hash_table_is_created(warned))
			hash_table_create(&warned, default_pool, 4, str_hash,
					  strcmp);
		else if (hash_table_lookup(warned, *names) != NULL)
			continue;
		char *name = i_strdup(*names);
		hash_table_insert(warned, name, name);
		e_warning(event, "%s: Unknown setting, ignored "
			  "(misspelled? see dovecot-dkim(7))",
			  str_sanitize(name, DKIM_SETTING_MAX_QUOTED));
	}
}

/*
 * Verification settings
 */

/* The authserv-id becomes part of a header field: allow printable ASCII
   without whitespace (dkimcore quotes it where RFC 8601 requires). */
static bool
authserv_id_is_valid(const char *value)
{
	for (const char *p = value; *p != '\0'; p++) {
		if (*p <= ' ' || *p >= 0x7f)
			return FALSE;
	}
	return TRUE;
}

static void
verify_settings_parse(const struct dkim_setting_strings *strings,
		      struct dkim_setting_reader *reader,
		      struct dkim_verify_settings *set_r)
{
	static const char *const body_length_choices[] = {
		[DKIM_BODY_LENGTH_REFUSE_PARTIAL] = "policy",
		[DKIM_BODY_LENGTH_ACCEPT] = "accept",
		NULL
	};
	struct dkim_verify_config *config = &set_r->verify_config;
	unsigned int body_length, drift_msecs;

	i_zero(set_r);
	set_r->verify = TRUE;
	dkim_verify_config_init(config);
	config->dns_timeout_msecs = DKIM_SETTINGS_DEFAULT_DNS_TIMEOUT_MSECS;

	dkim_setting_read_bool(reader, DKIM_SETTING(strings, verify),
			       &set_r->verify);
	dkim_setting_read_bool(reader, DKIM_SETTING(strings, arc),
			       &config->arc);

	if (*strings->authserv_id != '\0' &&
	    !authserv_id_is_valid(strings->authserv_id)) {
		reader_invalid(reader, DKIM_SETTING(strings, authserv_id),
			       "only printable ASCII without spaces");
	} else {
		set_r->authserv_id =
			dkim_setting_read_str(reader, strings->authserv_id);
	}

	set_r->dns.forward =
		dkim_setting_read_str(reader, strings->dns_resolver);
	set_r->dns.trust_anchor =
		dkim_setting_read_str(reader, strings->dns_trust_anchor);
	set_r->dns.table = dkim_setting_read_str(reader, strings->dns_table);

	dkim_setting_read_msecs(reader, DKIM_SETTING(strings, dns_timeout), 1,
				DKIM_SETTINGS_MAX_DNS_TIMEOUT_MSECS,
				&config->dns_timeout_msecs);
	dkim_setting_read_uint(reader, DKIM_SETTING(strings, max_signatures),
			       1, DKIM_MAX_SIGNATURES_LIMIT,
			       &config->max_signatures);
	dkim_setting_read_uint(reader, DKIM_SETTING(strings, min_key_bits),
			       DKIM_RSA_MIN_BITS,
			       DKIM_RSA_MAX_BITS,
			       &config->min_rsa_bits);

	body_length = config->body_length;
	dkim_setting_read_choice(reader, DKIM_SETTING(strings, body_length),
				 body_length_choices, &body_length);
	config->body_length = body_length;

	drift_msecs = config->clock_drift * 1000;
	dkim_setting_read_msecs(reader, DKIM_SETTING(strings, clock_drift), 0,
				DKIM_SETTINGS_MAX_CLOCK_DRIFT_SECS * 1000,
				&drift_msecs);
	config->clock_drift = drift_msecs / 1000;
}

void dkim_verify_settings_read(struct mail_user *user, pool_t pool,
			       struct event *event,
			       struct dkim_verify_settings *set_r)
{
	const struct dkim_setting_strings *strings;
	struct dkim_setting_reader reader;
	const char *error;

	dkim_setting_reader_init(&reader, pool);
	dkim_settings_warn_unknown(user, event);
	if (dkim_user_setting_strings_get(user, &strings, &error) < 0) {
		e_error(event, "Cannot read the dkim_* settings, using the "
			"defaults: %s", error);
		strings = &dkim_setting_strings_defaults;
		verify_settings_parse(strings, &reader, set_r);
		return;
	}
	verify_settings_parse(strings, &reader, set_r);
	dkim_user_setting_strings_free(&strings);

	const char *problem;
	array_foreach_elem(&reader.errors, problem)
		e_error(event, "%s (using the default)", problem);
}

static void
append_key_part(string_t *key, const char *part)
{
	if (part != NULL)
		str_append_tabescaped(key, part);
	str_append_c(key, '\t');
}

const char *dkim_dns_config_key(const struct dkim_resolver_config *dns)
{
	string_t *key = t_str_new(128);

	append_key_part(key, dns->forward);
	append_key_part(key, dns->trust_anchor);
	append_key_part(key, dns->table);
	return str_c(key);
}

const char *
dkim_verify_settings_key(const struct dkim_verify_settings *set)
{
	const struct dkim_verify_config *config = &set->verify_config;

	return t_strdup_printf("%u\t%u\t%u\t%u\t%d\t%d\t%s",
			       config->max_signatures, config->min_rsa_bits,
			       config->dns_timeout_msecs, config->clock_drift,
			       (int)config->body_length, config->arc ? 1 : 0,
			       dkim_dns_config_key(&set->dns));
}

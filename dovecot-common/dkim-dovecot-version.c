/* The Dovecot 2.3 / 2.4 differences; see dkim-dovecot-version.h. */

#include "lib.h"
#include "array.h"
#include "settings-parser.h"
#include "mail-user.h"
#include "raw-storage.h"
#include "dict.h"
#include "dkim-dovecot-version.h"
#include "dkim-keyed-table.h"
#include "dkim-settings.h"

#ifdef DKIM_DOVECOT_24
#  include "settings.h"
#  include "str-parse.h"
#  include "mail-storage-service.h"
#  include "sieve-settings.h"
#endif

#include <dlfcn.h>

/* Names the plugins' settings start with, for finding misspelled ones. */
#define DKIM_SETTING_PREFIX "dkim_"

#ifdef DKIM_DOVECOT_24

int dkim_user_setting_strings_get(struct mail_user *user,
				  const struct dkim_setting_strings **set_r,
				  const char **error_r)
{
	return settings_get(user->event, &dkim_setting_parser_info, 0,
			    set_r, error_r);
}

const char *const *dkim_user_unknown_setting_names(struct mail_user *user ATTR_UNUSED)
{
	static const char *const none[] = { NULL };

	return none;
}

int dkim_sieve_setting_enables(struct mail_user *user, const char *name,
			       const char *item)
{
	/* Pigeonhole's, found only when the Sieve plugin (which links
	   libdovecot-sieve) is loaded: this module must not need it. */
	const struct setting_parser_info *info =
		dlsym(RTLD_DEFAULT, "sieve_setting_parser_info");
	const struct sieve_settings *set;
	const ARRAY_TYPE(const_string) *list;
	const char *error;
	int ret;

	if (info == NULL)
		return -1;
	if (settings_get(user->event, info, 0, &set, &error) < 0) {
		e_debug(user->event, "dkim: Cannot read the Sieve settings: %s",
			error);
		return -1;
	}
	if (strcmp(name, "sieve_plugins") == 0)
		list = &set->plugins;
	else if (strcmp(name, "sieve_extensions") == 0)
		list = &set->extensions;
	else if (strcmp(name, "sieve_global_extensions") == 0)
		list = &set->global_extensions;
	else
		i_unreached();
	ret = array_is_created(list) &&
		array_lsearch(list, &item, i_strcmp_p) != NULL ? 1 : 0;
	settings_free(set);
	return ret;
}

int dkim_parse_interval_msecs(const char *value, unsigned int *msecs_r,
			      const char **error_r)
{
	return str_parse_get_interval_msecs(value, msecs_r, error_r);
}

struct mail_user *dkim_raw_user_create(struct mail_user *user)
{
	struct mail_storage_service_user *service_user = user->service_user;

	return raw_storage_create_from_set(
		mail_storage_service_user_get_service_ctx(service_user),
		mail_storage_service_user_get_settings_instance(service_user));
}

void dkim_event_set_user_debug(struct event *event ATTR_UNUSED,
			       struct mail_user *user ATTR_UNUSED)
{
}

int dkim_dict_open(struct mail_user *user, const char *name,
		   struct dict **dict_r, const char **error_r)
{
	struct event *event = event_create(user->event);
	const char *error;
	int ret;

	settings_event_add_list_filter_name(event, DKIM_DICT_FILTER_NAME,
					    name);
	ret = dict_init_auto(event, dict_r, &error);
	event_unref(&event);
	if (ret == 0) {
		*error_r = t_strdup_printf("no dict configured for it: "
			"%s %s { dict DRIVER { ... } } is missing",
			DKIM_DICT_FILTER_NAME, name);
	} else if (ret < 0) {
		*error_r = t_strdup_printf("cannot open the dict of %s %s: %s",
			DKIM_DICT_FILTER_NAME, name, error);
	}
	return ret > 0 ? 0 : -1;
}

#else

int dkim_user_setting_strings_get(struct mail_user *user,
				  const struct dkim_setting_strings **set_r,
				  const char **error_r ATTR_UNUSED)
{
	pool_t pool = pool_alloconly_create("dkim setting strings", 512);
	struct dkim_setting_strings *set =
		p_new(pool, struct dkim_setting_strings, 1);

	*set = dkim_setting_strings_defaults;
	set->pool = pool;
	for (const struct setting_define *def = dkim_setting_defines;
	     def->key != NULL; def++) {
		const char *value = mail_user_plugin_getenv(user, def->key);

		if (value != NULL)
			*(const char **)PTR_OFFSET(set, def->offset) = value;
	}
	*set_r = set;
	return 0;
}

static bool dkim_setting_name_exists(const char *name)
{
	for (const struct setting_define *def = dkim_setting_defines;
	     def->key != NULL; def++) {
		if (strcmp(def->key, name) == 0)
			return TRUE;
	}
	return FALSE;
}

const char *const *dkim_user_unknown_setting_names(struct mail_user *user)
{
	ARRAY_TYPE(const_string) unknown;
	const char *const *envs;
	unsigned int count;

	t_array_init(&unknown, 4);
	/* key, value, key, value, ...: plugin {} and the userdb fields */
	envs = array_get(&user->set->plugin_envs, &count);
	for (unsigned int i = 0; i + 1 < count; i += 2) {
		if (strncmp(envs[i], DKIM_SETTING_PREFIX,
			    strlen(DKIM_SETTING_PREFIX)) == 0 &&
		    !dkim_setting_name_exists(envs[i]))
			array_push_back(&unknown, &envs[i]);
	}
	array_append_zero(&unknown);
	return array_front(&unknown);
}

int dkim_sieve_setting_enables(struct mail_user *user, const char *name,
			       const char *item)
{
	const char *value, *const *words;
	int enabled = 0;

	/* Pigeonhole's, found only when the Sieve plugin (which links
	   libdovecot-sieve) is loaded: this module must not need it. */
	if (dlsym(RTLD_DEFAULT, "sieve_init") == NULL)
		return -1;
	value = mail_user_plugin_getenv(user, name);
	if (value == NULL)
		return 0;
	/* The last mention wins: "+x" and "x" enable, "-x" disables. */
	for (words = t_strsplit_spaces(value, " "); *words != NULL; words++) {
		const char *word = *words;
		bool disable = word[0] == '-';

		if (word[0] == '+' || word[0] == '-')
			word++;
		if (strcmp(word, item) == 0)
			enabled = disable ? 0 : 1;
	}
	return enabled;
}

int dkim_parse_interval_msecs(const char *value, unsigned int *msecs_r,
			      const char **error_r)
{
	return settings_get_time_msecs(value, msecs_r, error_r);
}

struct mail_user *dkim_raw_user_create(struct mail_user *user)
{
	/* it expands the settings itself */
	return raw_storage_create_from_set(user->set_info,
					   user->unexpanded_set);
}

void dkim_event_set_user_debug(struct event *event, struct mail_user *user)
{
	event_set_forced_debug(event, user->mail_debug);
}

int dkim_dict_open(struct mail_user *user, const char *name,
		   struct dict **dict_r, const char **error_r)
{
	struct dict_settings set;
	const char *error;

	i_zero(&set);
	set.base_dir = user->set->base_dir;
	set.event_parent = user->event;
	if (dict_init(name, &set, dict_r, &error) < 0) {
		*error_r = t_strdup_printf("cannot open the dict %s: %s",
					   name, error);
		return -1;
	}
	return 0;
}

#endif

void dkim_user_setting_strings_free(const struct dkim_setting_strings **_set)
{
	const struct dkim_setting_strings *set = *_set;
	pool_t pool;

	*_set = NULL;
	if (set == NULL)
		return;
	pool = set->pool;
	pool_unref(&pool);
}

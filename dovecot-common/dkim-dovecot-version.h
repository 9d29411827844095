#ifndef DKIM_DOVECOT_VERSION_H
#define DKIM_DOVECOT_VERSION_H

/* What differs between Dovecot 2.3 (Pigeonhole 0.5) and Dovecot 2.4
   (Pigeonhole 2.4), in one place: the rest of the plugins is written once
   for both.  The choice is made at build time by the Dovecot headers the
   plugins are compiled against. */

#if DOVECOT_PREREQ(2, 4, 0)
#  define DKIM_DOVECOT_24
#endif

struct mail_user;
struct event;
struct dict;
struct dkim_setting_strings;

/* The dkim_* settings in effect for a user, as strings (see
   dkim-settings.h): 2.3 reads them from plugin {} and the userdb fields
   (mail_user_plugin_getenv()), 2.4 from the settings the settings module
   declares, with the user's overrides (settings_get() on the user's event).
   An unset setting is "".  Returns -1 with *error_r set when 2.4 cannot
   give them (e.g. the settings module is not installed).  Free the result
   with dkim_user_setting_strings_free(). */
int dkim_user_setting_strings_get(struct mail_user *user,
				  const struct dkim_setting_strings **set_r,
				  const char **error_r);
void dkim_user_setting_strings_free(const struct dkim_setting_strings **set);

/* 2.4 reads settings through a parser info, which the settings module
   exports to the config process and the plugins pass to settings_get();
   2.3 has no use for one.  Defines `var` for the settings struct
   `struct_name` (whose first member is its pool). */
#ifdef DKIM_DOVECOT_24
#  define DKIM_SETTING_PARSER_INFO(var, info_name, defines_, defaults_, \
				   struct_name) \
	const struct setting_parser_info var = { \
		.name = info_name, \
		.defines = defines_, \
		.defaults = &defaults_, \
		.struct_size = sizeof(struct_name), \
		.pool_offset1 = 1 + offsetof(struct_name, pool), \
	}
extern const struct setting_parser_info dkim_setting_parser_info;

/* The named filter DKIM_DICT_FILTER_NAME (dkim-keyed-table.h) that holds
   a dict for dkim_keytable / dkim_signingtable = dict:NAME (see
   dkim-setting-defs.c). */
struct dkim_dict_settings {
	pool_t pool;
	const char *name;
	ARRAY_TYPE(const_string) dicts;
};
extern const struct setting_parser_info dkim_dict_setting_parser_info;
#else
#  define DKIM_SETTING_PARSER_INFO(var, info_name, defines_, defaults_, \
				   struct_name) \
	extern const struct setting_define defines_[]
#endif

/* 2.3 only: the dkim_* names in the user's plugin {} settings and userdb
   fields that no setting has (a misspelling), NULL-terminated, allocated
   from the data stack.  2.4's doveconf refuses those itself: always empty
   there. */
const char *const *dkim_user_unknown_setting_names(struct mail_user *user);

/* Whether the Sieve list setting `name` (sieve_plugins, sieve_extensions or
   sieve_global_extensions) enables `item` for the user, as Pigeonhole
   reads it: 1 yes, 0 no, -1 when this process has no Pigeonhole (the Sieve
   plugin is not loaded) or the settings cannot be read.  2.3 reads the
   plugin {} value ("+name", "-name" or a plain list), 2.4 Pigeonhole's
   boolean lists. */
int dkim_sieve_setting_enables(struct mail_user *user, const char *name,
			       const char *item);

/* Opens the dict that a table setting "dict:NAME" names, for the user:
   on 2.3 NAME is a dict URI ("proxy::dkim" for the dict server's dict
   "dkim"), opened with dict_init() in the user's base_dir; on 2.4 NAME
   names the filter "dkim_dict NAME { dict DRIVER { ... } }" (see
   DKIM_DICT_FILTER_NAME), opened with dict_init_auto().  Close it with
   dict_deinit(). */
int dkim_dict_open(struct mail_user *user, const char *name,
		   struct dict **dict_r, const char **error_r);

/* Parses a duration setting ("5s", "300 ms", a bare number of seconds) as
   Dovecot does for its own settings. */
int dkim_parse_interval_msecs(const char *value, unsigned int *msecs_r,
			      const char **error_r);

/* The mail user that holds the raw mailboxes of the delivery plugin's
   stored copies, created with the recipient's storage settings. */
struct mail_user *dkim_raw_user_create(struct mail_user *user);

/* Makes event log debug messages when the user has mail_debug enabled.  The
   delivery event does not inherit it on 2.3; on 2.4 events inherit it
   from the user's event and nothing is needed. */
void dkim_event_set_user_debug(struct event *event, struct mail_user *user);

/* Pigeonhole: an extension's load() and the plugin's <name>_load() return
   bool and void on 0.5, an int (0 or -1) on 2.4, and
   sieve_extension_register() returns the extension on 0.5, fills it in on
   2.4.  Only for files that include sieve-extensions.h. */
#ifdef SIEVE_EXTENSIONS_H
#  ifdef DKIM_DOVECOT_24
typedef int dkim_sieve_load_result_t;
#    define DKIM_SIEVE_LOAD_OK 0
typedef int dkim_sieve_plugin_load_result_t;
#    define DKIM_SIEVE_PLUGIN_LOAD_RETURN(ret) return (ret)

static inline int
dkim_sieve_extension_register(struct sieve_instance *svinst,
			      const struct sieve_extension_def *extdef,
			      const struct sieve_extension **ext_r)
{
	return sieve_extension_register(svinst, extdef, FALSE, ext_r);
}
#  else
typedef bool dkim_sieve_load_result_t;
#    define DKIM_SIEVE_LOAD_OK TRUE
typedef void dkim_sieve_plugin_load_result_t;
#    define DKIM_SIEVE_PLUGIN_LOAD_RETURN(ret) (void)(ret); return

static inline int
dkim_sieve_extension_register(struct sieve_instance *svinst,
			      const struct sieve_extension_def *extdef,
			      const struct sieve_extension **ext_r)
{
	*ext_r = sieve_extension_register(svinst, extdef, FALSE);
	return *ext_r == NULL ? -1 : 0;
}
#  endif
#endif

#endif

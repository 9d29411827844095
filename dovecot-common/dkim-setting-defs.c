/* The declaration of the dkim_* settings (see dkim-settings.h).  Compiled
   into the plugins, and on Dovecot 2.4 also into the settings module that
   declares them to the config process: nothing else may be linked here. */

#include "lib.h"
#include "settings-parser.h"
#include "dkim-dovecot-version.h"
#include "dkim-keyed-table.h"
#include "dkim-settings.h"

#undef DEF
#define DEF(name) \
	SETTING_DEFINE_STRUCT_STR("dkim_"#name, name, \
				  struct dkim_setting_strings)

const struct setting_define dkim_setting_defines[] = {
	DEF(verify),
	DEF(arc),
	DEF(authserv_id),
	DEF(dns_resolver),
	DEF(dns_trust_anchor),
	DEF(dns_table),
	DEF(dns_timeout),
	DEF(max_signatures),
	DEF(min_key_bits),
	DEF(body_length),
	DEF(clock_drift),

	DEF(sign),
	DEF(sign_failure),
	DEF(sign_unauthorized),
	DEF(sign_from),
	DEF(keytable),
	DEF(signingtable),
	DEF(table_cache_ttl),
	DEF(sign_domain),
	DEF(sign_selector),
	DEF(sign_key),
	DEF(multiple_signatures),
	DEF(sign_headers),
	DEF(oversign_headers),
	DEF(sign_canonicalization),
	DEF(sign_expire),
	DEF(sign_allow_unsafe_keys),

	SETTING_DEFINE_LIST_END
};

/* Every value unset: the defaults are the readers' (dkim-settings.c and
   the submission plugin), documented in the man pages. */
const struct dkim_setting_strings dkim_setting_strings_defaults = {
	.verify = "",
	.arc = "",
	.authserv_id = "",
	.dns_resolver = "",
	.dns_trust_anchor = "",
	.dns_table = "",
	.dns_timeout = "",
	.max_signatures = "",
	.min_key_bits = "",
	.body_length = "",
	.clock_drift = "",

	.sign = "",
	.sign_failure = "",
	.sign_unauthorized = "",
	.sign_from = "",
	.keytable = "",
	.signingtable = "",
	.table_cache_ttl = "",
	.sign_domain = "",
	.sign_selector = "",
	.sign_key = "",
	.multiple_signatures = "",
	.sign_headers = "",
	.oversign_headers = "",
	.sign_canonicalization = "",
	.sign_expire = "",
	.sign_allow_unsafe_keys = "",
};

DKIM_SETTING_PARSER_INFO(dkim_setting_parser_info, "dkim",
			 dkim_setting_defines, dkim_setting_strings_defaults,
			 struct dkim_setting_strings);

#ifdef DKIM_DOVECOT_24
/* "dkim_dict NAME { dict DRIVER { ... } }": the dict that
   dkim_keytable = dict:NAME names, in the way Dovecot 2.4's own plugins
   hold theirs (last_login { dict ... }), so that
   "doveadm dict get dkim_dict/NAME KEY" reaches it too.  Only the config
   process reads these; the plugin opens the dict from the filter. */
#undef DEF
#define DEF(name) \
	SETTING_DEFINE_STRUCT_STR("dkim_dict_"#name, name, \
				  struct dkim_dict_settings)
static const struct setting_define dkim_dict_setting_defines[] = {
	{ .type = SET_FILTER_ARRAY, .key = DKIM_DICT_FILTER_NAME,
	  .offset = offsetof(struct dkim_dict_settings, dicts),
	  .filter_array_field_name = "dkim_dict_name", },
	DEF(name),

	SETTING_DEFINE_LIST_END
};
static const struct dkim_dict_settings dkim_dict_settings_defaults = {
	.name = "",
	.dicts = ARRAY_INIT,
};
DKIM_SETTING_PARSER_INFO(dkim_dict_setting_parser_info, "dkim_dict",
			 dkim_dict_setting_defines,
			 dkim_dict_settings_defaults,
			 struct dkim_dict_settings);
#endif

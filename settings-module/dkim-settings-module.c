/* libdkim_settings.so: declares the dkim_* settings to Dovecot 2.4's config
   process, which loads every module in <moduledir>/settings/ and refuses
   settings that no module declares.  Built only for Dovecot 2.4; it holds
   nothing but the declaration (dkim-setting-defs.c), since the config
   process has none of the mail libraries the plugins use. */

#include "lib.h"
#include "settings-parser.h"
#include "dkim-dovecot.h"
#include "dkim-dovecot-version.h"

/* The config process finds these by the module's name, "dkim_settings". */
DKIM_EXPORT extern const char *dkim_settings_version;
DKIM_EXPORT extern const struct setting_parser_info *
	dkim_settings_set_infos[];

const char *dkim_settings_version = DOVECOT_ABI_VERSION;
const struct setting_parser_info *dkim_settings_set_infos[] = {
	&dkim_setting_parser_info,
	&dkim_dict_setting_parser_info,
	NULL
};

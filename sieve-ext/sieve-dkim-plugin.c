/* lib90_sieve_dkim_plugin: Pigeonhole plugin module "sieve_dkim", enabled
   with sieve_plugins = sieve_dkim; registers vnd.dovecot.dkim. */

#include "lib.h"

#include "sieve-common.h"
#include "sieve-extensions.h"

#include "dkim-dovecot-version.h"
#include "ext-dkim-common.h"

/* Pigeonhole's plugin interface (sieve-plugins.c). */
DKIM_EXPORT extern const char *sieve_dkim_plugin_version;
DKIM_EXPORT dkim_sieve_plugin_load_result_t
sieve_dkim_plugin_load(struct sieve_instance *svinst, void **context);
DKIM_EXPORT void sieve_dkim_plugin_unload(struct sieve_instance *svinst,
					  void *context);
DKIM_EXPORT void sieve_dkim_plugin_init(void);
DKIM_EXPORT void sieve_dkim_plugin_deinit(void);

const char *sieve_dkim_plugin_version = PIGEONHOLE_ABI_VERSION;

dkim_sieve_plugin_load_result_t
sieve_dkim_plugin_load(struct sieve_instance *svinst, void **context)
{
	const struct sieve_extension *ext;

	if (dkim_sieve_extension_register(svinst, &vnd_dkim_extension,
					  &ext) < 0) {
		DKIM_SIEVE_PLUGIN_LOAD_RETURN(-1);
	}
	e_debug(svinst->event, "Sieve DKIM plugin %s loaded",
		DOVECOT_DKIM_VERSION);
	*context = (void *)ext;
	DKIM_SIEVE_PLUGIN_LOAD_RETURN(0);
}

void sieve_dkim_plugin_unload(struct sieve_instance *svinst ATTR_UNUSED,
			      void *context)
{
	const struct sieve_extension *ext = context;

	sieve_extension_unregister(ext);
}

/* The module is dlclose()d after each Sieve instance: nothing to set up or
   tear down globally; the extension context holds everything. */
void sieve_dkim_plugin_init(void)
{
}

void sieve_dkim_plugin_deinit(void)
{
}

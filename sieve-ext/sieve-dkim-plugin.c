/* lib90_sieve_dkim_plugin: Pigeonhole plugin module "sieve_dkim", enabled
   with sieve_plugins = sieve_dkim; registers vnd.dovecot.dkim. */

#include "lib.h"

#include "sieve-common.h"
#include "sieve-extensions.h"

#include "ext-dkim-common.h"

/* Pigeonhole's plugin interface (sieve-plugins.c). */
DKIM_EXPORT extern const char *sieve_dkim_plugin_version;
DKIM_EXPORT void sieve_dkim_plugin_load(struct sieve_instance *svinst,
					void **context);
DKIM_EXPORT void sieve_dkim_plugin_unload(struct sieve_instance *svinst,
					  void *context);
DKIM_EXPORT void sieve_dkim_plugin_init(void);
DKIM_EXPORT void sieve_dkim_plugin_deinit(void);

const char *sieve_dkim_plugin_version = PIGEONHOLE_ABI_VERSION;

void sieve_dkim_plugin_load(struct sieve_instance *svinst, void **context)
{
	const struct sieve_extension *ext;

	ext = sieve_extension_register(svinst, &vnd_dkim_extension, FALSE);
	e_debug(svinst->event, "Sieve DKIM plugin %s loaded",
		DOVECOT_DKIM_VERSION);
	*context = (void *)ext;
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

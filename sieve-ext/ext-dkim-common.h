#ifndef EXT_DKIM_COMMON_H
#define EXT_DKIM_COMMON_H

#include "sieve-common.h"
#include "sieve-extensions.h"
#include "dkim-dovecot.h"
#include "dkim-dovecot-version.h"

/*
 * Extension vnd.dovecot.dkim
 */

extern const struct sieve_extension_def vnd_dkim_extension;
extern const struct sieve_command_def dkim_test;
extern const struct sieve_operation_def dkim_operation;

struct ext_dkim_context {
	/* For verifying here when the delivery plugin did not (sieve-test,
	   imapsieve, sieve-filter, or LDA/LMTP without it). */
	struct dkim_resolver_set *resolvers;
	/* The delivery plugin's dkim_plugin_delivery_summary(), or NULL when
	   it is not loaded in this process; looked up when a script first
	   runs the test (Pigeonhole loads the extension for every recipient,
	   mostly for scripts that never run it). */
	dkim_delivery_summary_func_t *delivery_summary;
	bool delivery_summary_looked_up;
};

dkim_sieve_load_result_t
ext_dkim_load(const struct sieve_extension *ext, void **context);
void ext_dkim_unload(const struct sieve_extension *ext);

/* The DKIM result of the message being filtered: the delivery plugin's
   verification when it ran for this message, else one made here, once per
   message.  Never derived from header text. */
const struct dkim_summary *
ext_dkim_get_summary(const struct sieve_runtime_env *renv,
		     const struct sieve_extension *ext);

#endif

/* Where the dkim test's verdict comes from: the delivery plugin, or a
   verification of the message made here. */

#include "lib.h"
#include "mail-storage.h"

#include "sieve-common.h"
#include "sieve-extensions.h"
#include "sieve-message.h"
#include "sieve-interpreter.h"
#include "sieve-runtime.h"
#include "sieve-runtime-trace.h"

#include "ext-dkim-common.h"

#include <dlfcn.h>

dkim_sieve_load_result_t
ext_dkim_load(const struct sieve_extension *ext ATTR_UNUSED, void **context)
{
	struct ext_dkim_context *extctx = i_new(struct ext_dkim_context, 1);

	extctx->resolvers = dkim_resolver_set_init();
	*context = extctx;
	return DKIM_SIEVE_LOAD_OK;
}

void ext_dkim_unload(const struct sieve_extension *ext)
{
	struct ext_dkim_context *extctx = ext->context;

	/* Pigeonhole unloads an extension it never loaded too (registered,
	   but not enabled in sieve_extensions). */
	if (extctx == NULL)
		return;
	/* Before this plugin is dlclose()d: no resolver thread may outlive
	   its code. */
	dkim_resolver_set_deinit(&extctx->resolvers);
	i_free(extctx);
}

static dkim_delivery_summary_func_t *
delivery_summary_func(struct ext_dkim_context *extctx)
{
	if (!extctx->delivery_summary_looked_up) {
		/* Mail plugins are loaded RTLD_GLOBAL before any Sieve
		   instance exists, so the delivery plugin is found here if
		   it is loaded. */
		extctx->delivery_summary = (dkim_delivery_summary_func_t *)
			dlsym(RTLD_DEFAULT, DKIM_DELIVERY_SUMMARY_SYMBOL);
		extctx->delivery_summary_looked_up = TRUE;
	}
	return extctx->delivery_summary;
}

static const struct dkim_summary *
summary_create(const struct sieve_runtime_env *renv,
	       const struct sieve_extension *ext, pool_t pool)
{
	const struct sieve_execute_env *eenv = renv->exec_env;
	struct ext_dkim_context *extctx = ext->context;
	struct mail *mail = eenv->msgdata->mail;
	const struct dkim_summary *delivered = NULL;
	struct dkim_summary *summary;
	struct dkim_verify_settings set;
	struct event *event = dkim_event_create(renv->event);
	dkim_delivery_summary_func_t *delivery_summary =
		delivery_summary_func(extctx);
	dkim_resolver *resolver;

	dkim_verify_settings_read(eenv->scriptenv->user,
				  pool_datastack_create(), event, &set);
	if (delivery_summary != NULL)
		delivered = delivery_summary(mail);

	if (!set.verify) {
		sieve_runtime_trace(renv, SIEVE_TRLVL_TESTS,
			"DKIM verification is disabled (dkim_verify = no)");
		summary = dkim_summary_disabled(pool);
	} else if (delivered != NULL) {
		sieve_runtime_trace(renv, SIEVE_TRLVL_TESTS,
			"using the verification made at delivery");
		summary = dkim_summary_dup(pool, delivered);
	} else {
		sieve_runtime_trace(renv, SIEVE_TRLVL_TESTS,
			"verifying the message");
		resolver = dkim_resolver_set_get(extctx->resolvers, &set.dns,
						 event);
		summary = dkim_verify_mail(mail, &set, resolver, pool, event,
					   NULL);
	}
	event_unref(&event);
	return summary;
}

const struct dkim_summary *
ext_dkim_get_summary(const struct sieve_runtime_env *renv,
		     const struct sieve_extension *ext)
{
	const struct dkim_summary *summary;

	summary = sieve_message_context_extension_get(renv->msgctx, ext);
	if (summary == NULL) {
		pool_t pool = sieve_message_context_pool(renv->msgctx);

		T_BEGIN {
			summary = summary_create(renv, ext, pool);
		} T_END;
		/* the context API stores non-const pointers; we never
		   modify the summary through it */
		sieve_message_context_extension_set(renv->msgctx, ext,
			(void *)summary);
	}
	return summary;
}

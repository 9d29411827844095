/* Verification: see milter-verify.h. */
#include "milter-verify.h"
#include "dkim-util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* Idle resolvers kept: one per connection verifying at the same time is
 * all that is ever needed; beyond this many the extra ones are freed. */
#define MAX_IDLE_RESOLVERS 64

static struct dkim_resolver_config resolver_config;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static dkim_resolver *idle[MAX_IDLE_RESOLVERS];
static size_t idle_count;

int
milter_resolvers_init(const struct milter_config *config,
		      struct dkim_error *error)
{
	resolver_config.forward = config->nameserver;
	resolver_config.trust_anchor = config->trust_anchor_file;
	resolver_config.table = NULL;

	dkim_resolver *first = milter_resolver_get(error);
	if (first == NULL)
		return -1;
	milter_resolver_put(&first);
	return 0;
}

void
milter_resolvers_deinit(void)
{
	pthread_mutex_lock(&pool_lock);
	while (idle_count > 0)
		dkim_resolver_free(&idle[--idle_count]);
	pthread_mutex_unlock(&pool_lock);
}

dkim_resolver *
milter_resolver_get(struct dkim_error *error)
{
	dkim_resolver *resolver = NULL;

	pthread_mutex_lock(&pool_lock);
	if (idle_count > 0)
		resolver = idle[--idle_count];
	pthread_mutex_unlock(&pool_lock);
	if (resolver == NULL &&
	    dkim_resolver_new(&resolver_config, &resolver, error) < 0)
		return NULL;
	return resolver;
}

void
milter_resolver_put(dkim_resolver **resolver)
{
	if (*resolver == NULL)
		return;
	pthread_mutex_lock(&pool_lock);
	if (idle_count < MAX_IDLE_RESOLVERS) {
		idle[idle_count++] = *resolver;
		*resolver = NULL;
	}
	pthread_mutex_unlock(&pool_lock);
	dkim_resolver_free(resolver);
}

dkim_verifier *
milter_verifier_new(const struct milter_config *config,
		    dkim_resolver *resolver)
{
	return dkim_verifier_new(&config->verify_config, resolver);
}

/* Which On-* case a verdict that is not a pass falls under. */
static enum milter_on
case_of(const dkim_verifier *verifier, enum dkim_result result)
{
	size_t count = dkim_verifier_signature_count(verifier);
	bool all_missing_keys = count > 0, any_internal = false,
	     any_dns = false;

	for (size_t i = 0; i < count; i++) {
		const struct dkim_signature_result *sig =
			dkim_verifier_signature(verifier, i);
		all_missing_keys &= sig->reason == DKIM_REASON_KEY_NOT_FOUND;
		any_internal |= sig->reason == DKIM_REASON_INTERNAL;
		any_dns |= sig->result == DKIM_RESULT_TEMPERROR &&
			sig->reason != DKIM_REASON_INTERNAL;
	}
	switch (result) {
	case DKIM_RESULT_NONE:
		return MILTER_ON_NO_SIGNATURE;
	case DKIM_RESULT_TEMPERROR:
		return any_internal && !any_dns ? MILTER_ON_INTERNAL_ERROR :
			MILTER_ON_DNS_ERROR;
	case DKIM_RESULT_PERMERROR:
		return all_missing_keys ? MILTER_ON_KEY_NOT_FOUND :
			MILTER_ON_BAD_SIGNATURE;
	default:
		return MILTER_ON_BAD_SIGNATURE;
	}
}

/* OpenDKIM delivers a bad signature whose key says t=y (testing), with
 * the result recorded: the sender is trying DKIM out. */
static bool
all_keys_testing(const dkim_verifier *verifier)
{
	size_t count = dkim_verifier_signature_count(verifier);

	for (size_t i = 0; i < count; i++) {
		if (!dkim_verifier_signature(verifier, i)->key_testing)
			return false;
	}
	return count > 0;
}

void
milter_verdict_get(const struct milter_config *config,
		   const dkim_verifier *verifier,
		   struct milter_verdict *verdict_r)
{
	enum dkim_result result = dkim_verifier_verdict(verifier);
	const struct dkim_signature_result *first =
		dkim_verifier_signature(verifier, 0);

	verdict_r->result = result;
	if (result == DKIM_RESULT_PASS) {
		verdict_r->on = MILTER_ON_COUNT;
		verdict_r->action = MILTER_ACTION_ACCEPT;
		snprintf(verdict_r->summary, sizeof(verdict_r->summary),
			 "pass");
		return;
	}
	verdict_r->on = case_of(verifier, result);
	verdict_r->action = config->on[verdict_r->on];
	if (all_keys_testing(verifier) &&
	    verdict_r->on != MILTER_ON_INTERNAL_ERROR)
		verdict_r->action = MILTER_ACTION_ACCEPT;
	if (first != NULL && first->reason != DKIM_REASON_NONE)
		snprintf(verdict_r->summary, sizeof(verdict_r->summary),
			 "%s (%s)", dkim_result_name(result),
			 dkim_reason_name(first->reason));
	else
		snprintf(verdict_r->summary, sizeof(verdict_r->summary),
			 "%s", dkim_result_name(result));
}

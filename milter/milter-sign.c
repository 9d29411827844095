/* Who is signed, and with which keys: see milter-sign.h. */
#include "milter-sign.h"
#include "dkim-sign-from.h"
#include "milter-log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum milter_route
milter_route(const struct milter_config *config, bool logged_in,
	     bool internal, bool to_forwarder)
{
	/* OpenDKIM's order (opendkim(8), OPERATION): our own clients'
	 * mail is signed, not verified. */
	if (config->sign && (logged_in || internal))
		return MILTER_ROUTE_SIGN;
	if (config->sign && to_forwarder)
		return MILTER_ROUTE_FORWARD;
	if (config->verify)
		return MILTER_ROUTE_VERIFY;
	return MILTER_ROUTE_NONE;
}

/* The login's SignFromTable patterns, NULL-terminated, or NULL. */
static char **
sign_from_patterns(const struct milter_config *config, const char *login)
{
	const struct milter_dataset_entry *entry;

	if (config->sign_from == NULL ||
	    (entry = milter_dataset_find(config->sign_from, login)) == NULL)
		return NULL;
	return milter_dataset_split_value(entry->value);
}

enum milter_plan_outcome
milter_plan_own(const struct milter_config *config, const char *login,
		const char *from, const char *from_problem,
		struct milter_plan *plan)
{
	char shown[MILTER_SHOWN_MAX + 4];
	struct dkim_error error;

	memset(plan, 0, sizeof(*plan));
	if (from == NULL) {
		snprintf(plan->reason, sizeof(plan->reason), "%s",
			 from_problem);
		return login != NULL ? MILTER_PLAN_UNAUTHORIZED :
			MILTER_PLAN_UNSIGNED;
	}
	if (login != NULL) {
		char **patterns = sign_from_patterns(config, login);
		bool permitted = dkim_sign_from_permitted(login, from,
			(const char *const *)patterns);

		milter_strings_free(&patterns);
		if (!permitted) {
			snprintf(plan->reason, sizeof(plan->reason),
				 "user may not sign for From address %s",
				 milter_shown(shown, from));
			return MILTER_PLAN_UNAUTHORIZED;
		}
	}
	if (milter_keys_for_address(from, &plan->keys, &error) < 0) {
		snprintf(plan->reason, sizeof(plan->reason), "%s", error.text);
		return MILTER_PLAN_FAILED;
	}
	if (plan->keys.count == 0) {
		snprintf(plan->reason, sizeof(plan->reason), "no %s matches "
			 "the From address %s", config->keytable != NULL ?
			 "SigningTable entry" : "Domain",
			 milter_shown(shown, from));
		return MILTER_PLAN_UNSIGNED;
	}
	return MILTER_PLAN_SIGN;
}

/* Whether `from` is in one of our signing domains: some key we would sign
 * it with, or one we forward with, has a d= aligned with it. */
static bool
from_is_ours(const char *from, const struct milter_keyset *forward_keys,
	     bool *failed_r, struct dkim_error *error)
{
	const char *domain = strrchr(from, '@') + 1;
	struct milter_keyset own = { 0 };
	bool ours = false;

	*failed_r = milter_keys_for_address(from, &own, error) < 0;
	for (size_t i = 0; i < own.count && !ours; i++)
		ours = dkim_domains_aligned(own.keys[i].domain, domain);
	for (size_t i = 0; i < forward_keys->count && !ours; i++)
		ours = dkim_domains_aligned(forward_keys->keys[i].domain,
					    domain);
	milter_keyset_free(&own);
	return ours;
}

enum milter_plan_outcome
milter_plan_forward(const struct milter_config *config,
		    const char *recipient, const char *keyname,
		    const char *from, const char *from_problem,
		    struct milter_plan *plan)
{
	char shown[MILTER_SHOWN_MAX + 4];
	struct dkim_error error;
	bool failed;

	(void)config;
	memset(plan, 0, sizeof(*plan));
	if ((keyname != NULL ?
	     milter_keys_by_name(keyname, recipient, &plan->seal_keys, &error) :
	     milter_keys_for_address(recipient, &plan->seal_keys,
				     &error)) < 0) {
		snprintf(plan->reason, sizeof(plan->reason), "%s", error.text);
		return MILTER_PLAN_FAILED;
	}
	if (plan->seal_keys.count == 0) {
		snprintf(plan->reason, sizeof(plan->reason), "no key for the "
			 "forwarding address %s",
			 milter_shown(shown, recipient));
		return MILTER_PLAN_UNSIGNED;
	}
	/* ARC validators accept rsa-sha256 seals (RFC 8617). */
	for (size_t i = 0; i < plan->seal_keys.count && plan->seal == NULL;
	     i++) {
		if (dkim_privkey_type(plan->seal_keys.keys[i].key) ==
		    DKIM_KEY_RSA)
			plan->seal = &plan->seal_keys.keys[i];
	}
	if (from == NULL) {
		snprintf(plan->reason, sizeof(plan->reason), "%s",
			 from_problem);
		return MILTER_PLAN_UNSIGNED;
	}
	if (from_is_ours(from, &plan->seal_keys, &failed, &error)) {
		snprintf(plan->reason, sizeof(plan->reason), "From %s is in "
			 "one of our signing domains, and the message comes "
			 "from outside: sealed, not signed",
			 milter_shown(shown, from));
	} else if (failed) {
		/* Unknown whether the From is ours: never risk signing it. */
		snprintf(plan->reason, sizeof(plan->reason), "sealed, not "
			 "signed: the keys for From %s: %s",
			 milter_shown(shown, from), error.text);
	} else {
		/* the identity is the forwarder's, not the author's */
		for (size_t i = 0; i < plan->seal_keys.count; i++) {
			const struct milter_key *key = &plan->seal_keys.keys[i];
			milter_keyset_add(&plan->keys, key->domain,
					  key->selector, NULL, key->key);
		}
	}
	if (plan->seal == NULL && plan->keys.count == 0) {
		snprintf(plan->reason, sizeof(plan->reason), "no RSA key for "
			 "the ARC seal of %s", milter_shown(shown, recipient));
		return MILTER_PLAN_UNSIGNED;
	}
	return MILTER_PLAN_SIGN;
}

void
milter_plan_free(struct milter_plan *plan)
{
	milter_keyset_free(&plan->keys);
	milter_keyset_free(&plan->seal_keys);
	plan->seal = NULL;
}

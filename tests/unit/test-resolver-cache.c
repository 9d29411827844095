/* The resolver's cache is bounded (it drops answered queries past 10,000
 * names), and what a verifier or a dkim_resolver_lookup() caller holds
 * must survive that: a long-lived resolver (the Dovecot plugins keep one)
 * sees as many key names as senders care to invent.  Nor may asking again
 * for a name whose answer failed or expired change that answer under a
 * holder. */
#include "dkim.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

/* More names than the cache keeps (DKIM_RESOLVER_MAX_CACHED). */
#define MANY_NAMES 10000

static const char record[] =
	"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

static enum dkim_dns_status
lookup(void *context, const char *qname, struct dkim_dns_answer *answer)
{
	(void)context;
	(void)qname;
	dkim_dns_answer_add(answer, record, sizeof(record) - 1);
	return DKIM_DNS_FOUND;
}

static void
fill_cache(dkim_resolver *resolver, unsigned count)
{
	char name[64];

	for (unsigned i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "filler%u._domainkey.example.net",
			 i);
		(void)dkim_resolver_lookup(resolver, name, 1000);
	}
}

/* Two signatures with different selectors: the second key query arrives
 * when the cache is full, while the first answer is held by the verifier. */
static void
test_verifier_keeps_its_answers(void)
{
	static const char message[] =
		"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; "
		"d=example.com; s=a; h=from; "
		"bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
		"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; "
		"d=example.com; s=b; h=from; "
		"bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
		"From: a@example.com\r\n\r\n";
	dkim_resolver *resolver = dkim_resolver_new_custom(lookup, NULL);
	struct dkim_verify_config config;

	fill_cache(resolver, MANY_NAMES - 1);
	dkim_verify_config_init(&config);
	dkim_verifier *verifier = dkim_verifier_new(&config, resolver);
	dkim_verifier_feed(verifier, message, sizeof(message) - 1);
	dkim_verifier_finish(verifier);
	/* Both keys were found: the signatures fail on their b= length. */
	for (size_t i = 0; i < 2; i++) {
		const struct dkim_signature_result *sig =
			dkim_verifier_signature(verifier, i);
		tap_ok(sig != NULL && sig->reason ==
		       DKIM_REASON_SIGNATURE_MISMATCH && sig->key_bits == 256,
		       "signature %zu judged with its key while the cache "
		       "overflowed", i + 1);
	}
	dkim_verifier_free(&verifier);
	dkim_resolver_free(&resolver);
}

/* dkim.h: a lookup's result "stays valid until the next
 * dkim_resolver_lookup() on this resolver", whatever verifications do to
 * the cache meanwhile. */
static void
test_lookup_result_stays_valid(void)
{
	dkim_resolver *resolver = dkim_resolver_new_custom(lookup, NULL);
	const struct dkim_dns_result *result =
		dkim_resolver_lookup(resolver, "first._domainkey.example.com",
				     1000);
	struct dkim_verify_config config;
	char message[512];

	dkim_verify_config_init(&config);
	for (unsigned i = 0; i < MANY_NAMES; i++) {
		snprintf(message, sizeof(message),
			 "DKIM-Signature: v=1; a=ed25519-sha256; d=example.com; "
			 "s=filler%u; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRk"
			 "m5NMpJWZG3hSuFU=; b=AAAA\r\n"
			 "From: a@example.com\r\n\r\n", i);
		dkim_verifier *verifier = dkim_verifier_new(&config, resolver);
		dkim_verifier_feed(verifier, message, strlen(message));
		dkim_verifier_finish(verifier);
		dkim_verifier_free(&verifier);
	}
	tap_ok(result->status == DKIM_DNS_FOUND && result->record_count == 1 &&
	       strcmp(result->records[0], record) == 0,
	       "a lookup result survives %u verifications", MANY_NAMES);
	dkim_resolver_free(&resolver);
}

/* A name whose first answer is a temporary failure (not cached: the next
 * query for it asks again) and whose later answers find the key. */
#define RETRIED_NAME "retried._domainkey.example.com"

static enum dkim_dns_status
fail_then_find(void *context, const char *qname,
	       struct dkim_dns_answer *answer)
{
	unsigned *calls = context;

	(void)qname;
	if ((*calls)++ == 0) {
		dkim_dns_answer_set_detail(answer, "first try failed");
		return DKIM_DNS_ERROR;
	}
	dkim_dns_answer_add(answer, record, sizeof(record) - 1);
	return DKIM_DNS_FOUND;
}

static dkim_verifier *
verifier_for_retried_name(dkim_resolver *resolver)
{
	static const char header[] =
		"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; "
		"d=example.com; s=retried; h=from; "
		"bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
		"From: a@example.com\r\n\r\n";
	struct dkim_verify_config config;

	dkim_verify_config_init(&config);
	dkim_verifier *verifier = dkim_verifier_new(&config, resolver);
	/* the header starts the key query */
	dkim_verifier_feed(verifier, header, sizeof(header) - 1);
	return verifier;
}

/* A verification that asks again for a name whose failed answer a
 * dkim_resolver_lookup() caller still holds must not change that result
 * (nor free the arrays it points to: ASan reports the read below). */
static void
test_retry_leaves_lookup_result(void)
{
	unsigned calls = 0;
	dkim_resolver *resolver = dkim_resolver_new_custom(fail_then_find,
							   &calls);
	const struct dkim_dns_result *result =
		dkim_resolver_lookup(resolver, RETRIED_NAME, 1000);
	const char *const *records = result->records;

	tap_ok(result->status == DKIM_DNS_ERROR && records[0] == NULL,
	       "the first lookup fails");
	dkim_verifier *verifier = verifier_for_retried_name(resolver);
	dkim_verifier_finish(verifier);
	const struct dkim_signature_result *sig =
		dkim_verifier_signature(verifier, 0);
	tap_ok(calls == 2 && sig != NULL &&
	       sig->reason == DKIM_REASON_SIGNATURE_MISMATCH,
	       "the verification asks again and finds the key");
	tap_ok(records[0] == NULL && result->records == records &&
	       result->status == DKIM_DNS_ERROR && result->detail != NULL &&
	       strcmp(result->detail, "first try failed") == 0,
	       "the lookup result held meanwhile is unchanged");
	dkim_verifier_free(&verifier);
	/* the held result left the cache: the next lookup gets the key */
	result = dkim_resolver_lookup(resolver, RETRIED_NAME, 1000);
	tap_ok(calls == 2 && result->status == DKIM_DNS_FOUND &&
	       result->record_count == 1,
	       "the next lookup gets the new answer from the cache");
	dkim_resolver_free(&resolver);
}

/* The other way round: a lookup asking again for a name whose failed
 * answer a verifier holds leaves the verifier its answer. */
static void
test_retry_leaves_verifier_answer(void)
{
	unsigned calls = 0;
	dkim_resolver *resolver = dkim_resolver_new_custom(fail_then_find,
							   &calls);
	dkim_verifier *verifier = verifier_for_retried_name(resolver);
	const struct dkim_dns_result *result =
		dkim_resolver_lookup(resolver, RETRIED_NAME, 1000);

	tap_ok(calls == 2 && result->status == DKIM_DNS_FOUND,
	       "the lookup asks again and finds the key");
	dkim_verifier_finish(verifier);
	const struct dkim_signature_result *sig =
		dkim_verifier_signature(verifier, 0);
	tap_ok(sig != NULL && sig->reason == DKIM_REASON_DNS_ERROR,
	       "the verifier is judged on the answer it got");
	/* freed in this order, the old answer is released last by the
	 * verifier; LeakSanitizer checks that it is freed */
	dkim_verifier_free(&verifier);
	dkim_resolver_free(&resolver);
}

/* The resolver is freed while the last lookup still holds an answer that
 * left the cache. */
static void
test_free_with_detached_lookup_result(void)
{
	unsigned calls = 0;
	dkim_resolver *resolver = dkim_resolver_new_custom(fail_then_find,
							   &calls);

	(void)dkim_resolver_lookup(resolver, RETRIED_NAME, 1000);
	dkim_verifier *verifier = verifier_for_retried_name(resolver);
	dkim_verifier_free(&verifier);
	dkim_resolver_free(&resolver);
	tap_ok(calls == 2 && resolver == NULL,
	       "a resolver whose last lookup result left the cache is freed "
	       "with it");
}

int
main(void)
{
	test_verifier_keeps_its_answers();
	test_lookup_result_stays_valid();
	test_retry_leaves_lookup_result();
	test_retry_leaves_verifier_answer();
	test_free_with_detached_lookup_result();
	return tap_done();
}

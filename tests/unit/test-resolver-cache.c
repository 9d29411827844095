/* The resolver's cache is bounded (it drops answered queries past 10,000
 * names), and what a verifier or a dkim_resolver_lookup() caller holds
 * must survive that: a long-lived resolver (the Dovecot plugins keep one)
 * sees as many key names as senders care to invent. */
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

int
main(void)
{
	test_verifier_keeps_its_answers();
	test_lookup_result_stays_valid();
	return tap_done();
}

/* Signing, checked by verifying: whatever message the signer accepts, the
 * signature it makes must verify (with the same key, at the same time),
 * and its field must be folded at 78 characters.
 *
 * Input: one option byte (bit 0: relaxed header canonicalization, bit 1:
 * relaxed body, bit 2: add l=), then the message. */
#include "dkim.h"
#include "fuzz.h"

#define DOMAIN "example.com"
#define SELECTOR "sel"
#define TIMESTAMP 1700000000
#define FOLD_WIDTH 78
/* RFC 8463 A.2: the Ed25519 test key, as a base64 seed. */
#define ED25519_SEED "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="

struct keys {
	dkim_privkey *private;
	char *record;	/* the published "v=DKIM1; k=ed25519; p=..." */
};

static enum dkim_dns_status
lookup(void *context, const char *qname, struct dkim_dns_answer *answer)
{
	const struct keys *keys = context;

	if (strcmp(qname, SELECTOR "._domainkey." DOMAIN) != 0)
		return DKIM_DNS_NOT_FOUND;
	dkim_dns_answer_add(answer, keys->record, strlen(keys->record));
	return DKIM_DNS_FOUND;
}

/* Loaded once: a key is meant to be reused for many messages. */
static const struct keys *
get_keys(void)
{
	static struct keys keys;
	struct dkim_error error;

	if (keys.private == NULL) {
		FUZZ_ASSERT(dkim_privkey_parse(ED25519_SEED,
					       strlen(ED25519_SEED),
					       &keys.private, &error) == 0,
			    "test key: %s", error.text);
		keys.record = dkim_privkey_public_record(keys.private);
	}
	return &keys;
}

static void
check_folding(const char *fields)
{
	for (const char *line = fields; *line != '\0';) {
		const char *end = strstr(line, "\r\n");

		FUZZ_ASSERT(end != NULL, "field does not end in CRLF");
		FUZZ_ASSERT(end - line <= FOLD_WIDTH, "line of %td characters: %.*s",
			    end - line, (int)(end - line), line);
		line = end + 2;
	}
}

static void
check_verifies(const struct keys *keys, const char *fields,
	       const uint8_t *message, size_t size)
{
	struct dkim_verify_config config;

	dkim_verify_config_init(&config);
	config.now = TIMESTAMP;
	config.body_length = DKIM_BODY_LENGTH_ACCEPT;
	dkim_resolver *resolver = dkim_resolver_new_custom(lookup,
							   (void *)keys);
	dkim_verifier *verifier = dkim_verifier_new(&config, resolver);
	dkim_verifier_feed(verifier, fields, strlen(fields));
	dkim_verifier_feed(verifier, message, size);
	dkim_verifier_finish(verifier);

	/* Ours is the topmost signature; the message may bring others. */
	const struct dkim_signature_result *ours =
		dkim_verifier_signature(verifier, 0);
	FUZZ_ASSERT(ours != NULL && ours->result == DKIM_RESULT_PASS,
		    "our own signature does not verify: %s (%s)\n%s",
		    ours != NULL ? dkim_result_name(ours->result) : "none",
		    ours != NULL && ours->explanation != NULL ?
		    ours->explanation : "-", fields);
	dkim_verifier_free(&verifier);
	dkim_resolver_free(&resolver);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct keys *keys = get_keys();
	struct dkim_sign_config config;
	struct dkim_error error;

	if (size == 0)
		return 0;
	dkim_sign_config_init(&config);
	config.domain = DOMAIN;
	config.selector = SELECTOR;
	config.key = keys->private;
	config.timestamp = TIMESTAMP;
	config.header_canon = (data[0] & 1) != 0 ? DKIM_CANON_RELAXED :
		DKIM_CANON_SIMPLE;
	config.body_canon = (data[0] & 2) != 0 ? DKIM_CANON_RELAXED :
		DKIM_CANON_SIMPLE;
	config.body_length = (data[0] & 4) != 0;
	data++;
	size--;

	dkim_signer *signer = dkim_signer_new();
	FUZZ_ASSERT(dkim_signer_add(signer, &config, &error) == 0,
		    "cannot add a signature: %s", error.text);
	dkim_signer_feed(signer, data, size);
	if (dkim_signer_finish(signer, &error) == 0) {
		const char *fields = dkim_signer_fields(signer);

		check_folding(fields);
		check_verifies(keys, fields, data, size);
	} else {
		fuzz_check_shown(error.text, sizeof(error.text) - 1,
				 "signing error");
	}
	dkim_signer_free(&signer);
	return 0;
}

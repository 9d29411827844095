/* ARC (RFC 8617), checked against itself.  Whatever the message,
 * validation gives a consistent, sanitized result, the same in any
 * chunking, and the Authentication-Results field stays clean.  Whatever
 * the sealer seals validates as what it says: cv=none or cv=pass grows
 * a passing chain by one set (twice in a row), cv=fail gives a failing
 * chain, and the sealer's view of the arriving chain is the verifier's.
 *
 * Every key query is answered with the RFC 8463 A.1 RSA key, which is
 * also the key of the ARC test suite's seals (and dkimpy's "test" key):
 * the suite's messages arrive with passing chains for the fuzzer to
 * mutate.
 *
 * Input: one option byte (bit 0: relaxed header canonicalization for our
 * AMS, bit 1: relaxed body, bit 2: take the results from the message's
 * Authentication-Results fields instead of a given value, bits 3-7: the
 * chunk size for the chunked validation), then the message. */
#include "dkim.h"
#include "fuzz.h"

#define DOMAIN "seal.example"
#define SELECTOR "arc"
#define AUTHSERV_ID "mx.seal.example"
#define NOW 1700000000
/* dkim_sanitize()'s bound on any text taken from a message. */
#define MAX_SHOWN 255

static const char test_key[] =
	"-----BEGIN RSA PRIVATE KEY-----\n"
	"MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi\n"
	"Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM\n"
	"KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB\n"
	"AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm\n"
	"6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe\n"
	"zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy\n"
	"6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc\n"
	"uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy\n"
	"WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd\n"
	"WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a\n"
	"licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst\n"
	"o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe\n"
	"uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL\n"
	"-----END RSA PRIVATE KEY-----\n";

struct keys {
	dkim_privkey *private;
	char *record;
};

/* Every name has the test key's record. */
static enum dkim_dns_status
answer_test_key(void *context, const char *qname,
		struct dkim_dns_answer *answer)
{
	const struct keys *keys = context;

	(void)qname;
	dkim_dns_answer_add(answer, keys->record, strlen(keys->record));
	return DKIM_DNS_FOUND;
}

/* Parsed at the first input only: a loaded key serves many messages. */
static const struct keys *
test_keys(void)
{
	static struct keys keys;
	struct dkim_error error;

	if (keys.private != NULL)
		return &keys;
	FUZZ_ASSERT(dkim_privkey_parse(test_key, strlen(test_key),
				       &keys.private, &error) == 0,
		    "test key: %s", error.text);
	keys.record = dkim_privkey_public_record(keys.private);
	return &keys;
}

/* One validation outcome, to compare runs. */
struct outcome {
	enum dkim_result cv;
	enum dkim_reason reason;
	unsigned sets, oldest_pass, failed_instance;
	char explanation[MAX_SHOWN + 1];
};

static void
check_result(const struct dkim_arc_result *arc)
{
	switch (arc->cv) {
	case DKIM_RESULT_NONE:
		FUZZ_ASSERT(arc->sets == 0 && arc->reason == DKIM_REASON_NONE,
			    "cv=none with %u sets", arc->sets);
		break;
	case DKIM_RESULT_PASS:
		FUZZ_ASSERT(arc->reason == DKIM_REASON_NONE &&
			    arc->explanation == NULL && arc->sets >= 1 &&
			    arc->sets <= DKIM_ARC_MAX_SETS &&
			    arc->oldest_pass <= arc->sets &&
			    arc->seal_domain != NULL,
			    "inconsistent pass (%u sets, oldest-pass %u)",
			    arc->sets, arc->oldest_pass);
		break;
	case DKIM_RESULT_FAIL:
		FUZZ_ASSERT(arc->reason != DKIM_REASON_NONE &&
			    arc->explanation != NULL &&
			    arc->failed_instance <= arc->sets,
			    "fail without a reason, or failing set %u of %u",
			    arc->failed_instance, arc->sets);
		break;
	default:
		FUZZ_ASSERT(false, "cv=%s", dkim_result_name(arc->cv));
	}
	fuzz_check_shown(arc->explanation, MAX_SHOWN, "ARC explanation");
	fuzz_check_shown(arc->seal_domain, MAX_SHOWN, "ARC seal d=");
}

static void
check_authres(const dkim_verifier *verifier)
{
	char *value = dkim_authres_value(verifier, AUTHSERV_ID, 0);
	size_t len = strlen(value), bad = fuzz_unprintable_at(value, len);

	FUZZ_ASSERT(bad == len, "Authentication-Results has byte 0x%02x: %s",
		    (unsigned char)value[bad], value);
	FUZZ_ASSERT(dkim_authres_is_ours(value, len, AUTHSERV_ID),
		    "our Authentication-Results is not ours: %s", value);
	free(value);
}

/* Validates `prefix` followed by the message, in pieces of `chunk` bytes
 * (0: at once). */
static struct outcome
validate(const struct keys *keys, const char *prefix, const uint8_t *data,
	 size_t size, size_t chunk)
{
	struct dkim_verify_config config;
	const struct dkim_arc_result *arc;
	struct outcome outcome;

	dkim_verify_config_init(&config);
	config.now = NOW;
	dkim_resolver *resolver = dkim_resolver_new_custom(answer_test_key,
							   (void *)keys);
	dkim_verifier *verifier = dkim_verifier_new(&config, resolver);
	dkim_verifier_feed(verifier, prefix, strlen(prefix));
	for (size_t pos = 0; pos < size;) {
		size_t n = chunk == 0 || chunk > size - pos ? size - pos : chunk;
		dkim_verifier_feed(verifier, data + pos, n);
		pos += n;
	}
	dkim_verifier_finish(verifier);

	memset(&outcome, 0, sizeof(outcome));
	outcome.cv = dkim_verifier_arc(verifier, &arc);
	check_result(arc);
	check_authres(verifier);
	outcome.reason = arc->reason;
	outcome.sets = arc->sets;
	outcome.oldest_pass = arc->oldest_pass;
	outcome.failed_instance = arc->failed_instance;
	if (arc->explanation != NULL)
		snprintf(outcome.explanation, sizeof(outcome.explanation), "%s",
			 arc->explanation);
	dkim_verifier_free(&verifier);
	dkim_resolver_free(&resolver);
	return outcome;
}

/* Seals `prefix` + message; returns the new fields (malloc()ed) or NULL
 * when the signer refused, and the arriving chain's status. */
static char *
seal(const struct keys *keys, unsigned options, const char *prefix,
     const uint8_t *data, size_t size, enum dkim_result *cv_r,
     bool *sealed_r)
{
	struct dkim_arc_seal_config config;
	struct dkim_verify_config verify;
	struct dkim_error error;
	char *fields = NULL;

	dkim_verify_config_init(&verify);
	verify.now = NOW;
	dkim_resolver *resolver = dkim_resolver_new_custom(answer_test_key,
							   (void *)keys);
	dkim_arc_seal_config_init(&config);
	config.domain = DOMAIN;
	config.selector = SELECTOR;
	config.key = keys->private;
	config.header_canon = (options & 1) != 0 ? DKIM_CANON_RELAXED :
		DKIM_CANON_SIMPLE;
	config.body_canon = (options & 2) != 0 ? DKIM_CANON_RELAXED :
		DKIM_CANON_SIMPLE;
	if ((options & 4) != 0)
		config.authserv_id = AUTHSERV_ID;
	else
		config.authres = AUTHSERV_ID "; spf=pass smtp.mailfrom=a.example";
	config.timestamp = NOW;
	config.resolver = resolver;
	config.verify = &verify;

	dkim_signer *signer = dkim_signer_new();
	FUZZ_ASSERT(dkim_signer_add_arc_seal(signer, &config, &error) == 0,
		    "cannot ask for a seal: %s", error.text);
	dkim_signer_feed(signer, prefix, strlen(prefix));
	dkim_signer_feed(signer, data, size);
	if (dkim_signer_finish(signer, &error) == 0)
		fields = strdup(dkim_signer_fields(signer));
	*cv_r = dkim_signer_arc(signer, NULL, sealed_r);
	FUZZ_ASSERT(fields != NULL || !*sealed_r, "refused, but sealed");
	dkim_signer_free(&signer);
	dkim_resolver_free(&resolver);
	return fields;
}

/* Seals and checks that the result validates as the seal says. */
static char *
seal_and_check(const struct keys *keys, unsigned options, const char *prefix,
	       const uint8_t *data, size_t size,
	       const struct outcome *arriving)
{
	enum dkim_result cv;
	bool sealed;
	char *fields = seal(keys, options, prefix, data, size, &cv, &sealed);

	FUZZ_ASSERT(fields == NULL || cv == arriving->cv,
		    "the sealer saw cv=%s, the verifier cv=%s (%s)",
		    dkim_result_name(cv), dkim_result_name(arriving->cv),
		    arriving->explanation);
	if (fields == NULL || !sealed) {
		FUZZ_ASSERT(fields == NULL ||
			    arriving->reason == DKIM_REASON_ARC_CHAIN_FAILED,
			    "no set added to a chain that may go on: %s",
			    arriving->explanation);
		free(fields);
		return NULL;
	}

	char *both = malloc(strlen(fields) + strlen(prefix) + 1);
	FUZZ_ASSERT(both != NULL, "out of memory");
	strcpy(both, fields);
	strcat(both, prefix);
	free(fields);
	struct outcome now = validate(keys, both, data, size, 0);
	if (cv == DKIM_RESULT_FAIL) {
		FUZZ_ASSERT(now.cv == DKIM_RESULT_FAIL &&
			    now.reason == DKIM_REASON_ARC_CHAIN_FAILED,
			    "a cv=fail seal gives %s: %s",
			    dkim_result_name(now.cv), now.explanation);
	} else {
		FUZZ_ASSERT(now.cv == DKIM_RESULT_PASS &&
			    now.sets == arriving->sets + 1,
			    "our seal over a cv=%s chain of %u sets gives %s "
			    "with %u sets: %s\n%s", dkim_result_name(cv),
			    arriving->sets, dkim_result_name(now.cv), now.sets,
			    now.explanation, both);
	}
	return both;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct keys *keys = test_keys();

	if (size == 0)
		return 0;
	unsigned options = data[0];
	size_t chunk = 1 + (options >> 3);
	data++;
	size--;

	struct outcome once = validate(keys, "", data, size, 0);
	struct outcome chunked = validate(keys, "", data, size, chunk);
	FUZZ_ASSERT(memcmp(&once, &chunked, sizeof(once)) == 0,
		    "chunks of %zu bytes change the outcome: cv=%s (%s) vs "
		    "cv=%s (%s)", chunk, dkim_result_name(once.cv),
		    once.explanation, dkim_result_name(chunked.cv),
		    chunked.explanation);

	char *first = seal_and_check(keys, options, "", data, size, &once);
	if (first != NULL && once.cv != DKIM_RESULT_FAIL) {
		/* The next hop: its A-R field says what it found. */
		const char *results = "Authentication-Results: " AUTHSERV_ID
			"; arc=pass\r\n";
		struct outcome sealed_once = validate(keys, first, data, size, 0);
		char *prefix = malloc(strlen(results) + strlen(first) + 1);

		FUZZ_ASSERT(prefix != NULL, "out of memory");
		strcpy(prefix, results);
		strcat(prefix, first);
		free(seal_and_check(keys, options, prefix, data, size,
				    &sealed_once));
		free(prefix);
	}
	free(first);
	return 0;
}

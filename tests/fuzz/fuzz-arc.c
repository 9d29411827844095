/* ARC (RFC 8617), checked against itself.  Whatever the message,
 * validation gives a consistent, sanitized result, the same in any
 * chunking, and the Authentication-Results field stays clean.  The
 * sealer's cv= follows the rule of dkim.h (dkim_arc_seal_config.authres):
 * with nothing recorded it is the verifier's cv; a recorded arc=fail is
 * sealed as it is, a recorded arc=pass only over a chain whose structure
 * is sound, and anything else gives the verifier's cv, so a seal never
 * says pass over a broken chain, nor none over a chain.  What it seals
 * validates as it says: cv=none starts a passing chain, cv=pass gives a
 * chain one set longer (passing when the arriving one did), cv=fail a
 * chain that has ended; and a next hop, recording what it found, extends
 * that in turn.
 *
 * Every key query is answered with the RFC 8463 A.1 RSA key, which is
 * also the key of the ARC test suite's seals (and dkimpy's "test" key):
 * the suite's messages arrive with passing chains for the fuzzer to
 * mutate.  The key, its record and the resolver are made once, and each
 * chain is parsed no more often than the checks need: parsing is most of
 * the cost of an input.
 *
 * Input: one option byte, then the message.  Bit 0: relaxed header
 * canonicalization for our AMS; bit 1: relaxed body; bit 2: take this
 * hop's results from an Authentication-Results field put on top of the
 * message instead of a given value; bits 3-4: the arc= result they record
 * (0: none at all, 1: none, 2: pass, 3: fail); bits 5-6: how many hops
 * seal (0, 1, or 2: a next hop seals our chain again); bit 7: validate
 * in chunks of 1 byte instead of 13. */
#include "dkim.h"
#include "dkim-private.h"
#include "fuzz.h"

#define DOMAIN "seal.example"
#define SELECTOR "arc"
#define AUTHSERV_ID "mx.seal.example"
#define RESULTS AUTHSERV_ID "; spf=pass smtp.mailfrom=a.example"
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

struct fixture {
	dkim_privkey *private;
	char *record;
	dkim_resolver *resolver;
};

/* Every name has the test key's record. */
static enum dkim_dns_status
answer_test_key(void *context, const char *qname,
		struct dkim_dns_answer *answer)
{
	const struct fixture *fixture = context;

	(void)qname;
	dkim_dns_answer_add(answer, fixture->record, strlen(fixture->record));
	return DKIM_DNS_FOUND;
}

/* Made at the first input only.  One resolver serves every input: it
 * gives every name the same answer, so what it caches changes nothing. */
static const struct fixture *
get_fixture(void)
{
	static struct fixture fixture;
	struct dkim_error error;

	if (fixture.private != NULL)
		return &fixture;
	FUZZ_ASSERT(dkim_privkey_parse(test_key, strlen(test_key),
				       &fixture.private, &error) == 0,
		    "test key: %s", error.text);
	fixture.record = dkim_privkey_public_record(fixture.private);
	fixture.resolver = dkim_resolver_new_custom(answer_test_key, &fixture);
	return &fixture;
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
			    (arc->sets <= DKIM_ARC_MAX_AMS_CHECKS ||
			     arc->oldest_pass > arc->sets -
			     DKIM_ARC_MAX_AMS_CHECKS) &&
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

/* Whether the ARC fields of the message pass steps 1-3 (RFC 8617 §5.2),
 * as the sealer judges it: the verifier's result does not tell a
 * structure failure from a signature's. */
static bool
structure_sound(const char *prefix, const uint8_t *data, size_t size)
{
	struct dkim_verify_config config;
	struct dkim_headers headers;
	struct dkim_arc_chain chain = { 0 };

	dkim_verify_config_init(&config);
	dkim_headers_init(&headers, config.max_header_bytes);
	dkim_headers_feed(&headers, prefix, strlen(prefix));
	dkim_headers_feed(&headers, data, size);
	dkim_headers_finish(&headers);
	bool sound = dkim_arc_chain_collect(&chain, &headers) && chain.sound;
	dkim_arc_chain_free(&chain);
	dkim_headers_free(&headers);
	return sound;
}

/* Validates `prefix` followed by the message, in pieces of `chunk` bytes
 * (0: at once). */
static struct outcome
validate(const char *prefix, const uint8_t *data, size_t size, size_t chunk)
{
	struct dkim_verify_config config;
	const struct dkim_arc_result *arc;
	struct outcome outcome;

	dkim_verify_config_init(&config);
	config.now = NOW;
	dkim_verifier *verifier = dkim_verifier_new(&config,
						    get_fixture()->resolver);
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
	return outcome;
}

/* What this hop records: bits 3-4 of the option byte. */
enum record {
	RECORD_NOTHING,
	RECORD_NONE,
	RECORD_PASS,
	RECORD_FAIL,
};

static const char *const record_texts[] = {
	[RECORD_NOTHING] = "",
	[RECORD_NONE] = "; arc=none",
	[RECORD_PASS] = "; arc=pass",
	[RECORD_FAIL] = "; arc=fail",
};

/* The seal's cv= by the rule of dkim.h, over a chain whose structure is
 * `sound` or not. */
static enum dkim_result
expected_cv(enum record record, const struct outcome *arriving, bool sound)
{
	if (record == RECORD_FAIL)
		return DKIM_RESULT_FAIL;
	if (record == RECORD_PASS && sound && arriving->sets > 0)
		return DKIM_RESULT_PASS;
	return arriving->cv;
}

/* Seals `prefix` + message; returns the new fields (malloc()ed) or NULL
 * when the signer refused, and the seal's cv=. */
static char *
seal(unsigned options, enum record record, const char *prefix,
     const uint8_t *data, size_t size, enum dkim_result *cv_r,
     bool *sealed_r)
{
	const struct fixture *fixture = get_fixture();
	struct dkim_arc_seal_config config;
	struct dkim_verify_config verify;
	struct dkim_error error;
	char results[128], *fields = NULL;
	char *own_field = NULL;

	snprintf(results, sizeof(results), "%s%s", RESULTS,
		 record_texts[record]);
	dkim_verify_config_init(&verify);
	verify.now = NOW;
	dkim_arc_seal_config_init(&config);
	config.domain = DOMAIN;
	config.selector = SELECTOR;
	config.key = fixture->private;
	config.header_canon = (options & 1) != 0 ? DKIM_CANON_RELAXED :
		DKIM_CANON_SIMPLE;
	config.body_canon = (options & 2) != 0 ? DKIM_CANON_RELAXED :
		DKIM_CANON_SIMPLE;
	if ((options & 4) != 0) {
		config.authserv_id = AUTHSERV_ID;
		own_field = fuzz_strdup_printf("Authentication-Results: %s\r\n",
					       results);
	} else {
		config.authres = results;
	}
	config.timestamp = NOW;
	config.resolver = fixture->resolver;
	config.verify = &verify;

	dkim_signer *signer = dkim_signer_new();
	FUZZ_ASSERT(dkim_signer_add_arc_seal(signer, &config, &error) == 0,
		    "cannot ask for a seal: %s", error.text);
	if (own_field != NULL)
		dkim_signer_feed(signer, own_field, strlen(own_field));
	dkim_signer_feed(signer, prefix, strlen(prefix));
	dkim_signer_feed(signer, data, size);
	if (dkim_signer_finish(signer, &error) == 0) {
		fields = fuzz_strdup_printf("%s%s", dkim_signer_fields(signer),
					    own_field != NULL ? own_field : "");
	} else {
		/* arc-sign.c's guard: it refused to hash the sets of a chain
		 * that failed the structure check, which a seal must never
		 * try. */
		FUZZ_ASSERT(strstr(error.text, "failed the structure check") ==
			    NULL, "%s", error.text);
	}
	*cv_r = dkim_signer_arc(signer, NULL, sealed_r);
	FUZZ_ASSERT(fields != NULL || !*sealed_r, "refused, but sealed");
	dkim_signer_free(&signer);
	free(own_field);
	return fields;
}

/* Seals with `record` and checks the seal against the rule and what it
 * gives; returns the new fields + `prefix` (malloc()ed) when a set was
 * added, and their validation. */
static char *
seal_and_check(unsigned options, enum record record, const char *prefix,
	       const uint8_t *data, size_t size,
	       const struct outcome *arriving, struct outcome *sealed_r)
{
	enum dkim_result cv;
	bool sealed;
	char *fields = seal(options, record, prefix, data, size, &cv, &sealed);
	/* Nothing recorded on top: an arc= result in the message's own
	 * Authentication-Results fields of ours may count, unknown here. */
	bool known = record != RECORD_NOTHING || (options & 4) == 0;

	if (fields == NULL || !sealed) {
		FUZZ_ASSERT(fields == NULL ||
			    arriving->reason == DKIM_REASON_ARC_CHAIN_FAILED,
			    "no set added to a chain that may go on: %s",
			    arriving->explanation);
		free(fields);
		return NULL;
	}
	/* A chain that passed is sound; for others it takes a parse. */
	bool sound = arriving->cv == DKIM_RESULT_PASS ||
		structure_sound(prefix, data, size);
	FUZZ_ASSERT(!known || cv == expected_cv(record, arriving, sound),
		    "recorded '%s' over cv=%s (%s structure, %u sets, %s): "
		    "sealed cv=%s", record_texts[record],
		    dkim_result_name(arriving->cv), sound ? "sound" : "broken",
		    arriving->sets, arriving->explanation,
		    dkim_result_name(cv));
	/* Whatever is recorded: */
	FUZZ_ASSERT(cv != DKIM_RESULT_PASS || (sound && arriving->sets > 0),
		    "cv=pass sealed over a broken chain or none: %s",
		    arriving->explanation);
	FUZZ_ASSERT(cv != DKIM_RESULT_NONE || arriving->sets == 0,
		    "cv=none sealed over %u sets", arriving->sets);
	FUZZ_ASSERT(sound || arriving->sets == 0 || cv == DKIM_RESULT_FAIL,
		    "a broken chain sealed cv=%s", dkim_result_name(cv));

	char *both = fuzz_strdup_printf("%s%s", fields, prefix);
	free(fields);
	struct outcome now = validate(both, data, size, 0);
	if (cv == DKIM_RESULT_FAIL) {
		FUZZ_ASSERT(now.cv == DKIM_RESULT_FAIL &&
			    now.reason == DKIM_REASON_ARC_CHAIN_FAILED,
			    "a cv=fail seal gives %s: %s",
			    dkim_result_name(now.cv), now.explanation);
	} else {
		/* A recorded pass over a chain whose signatures fail now
		 * may give a failing chain: the seal vouches for what this
		 * hop saw on arrival.  But never a broken one: the arriving
		 * chain was sound, and ours is one set more. */
		FUZZ_ASSERT(now.sets == arriving->sets + 1 &&
			    now.reason != DKIM_REASON_ARC_STRUCTURE &&
			    (now.cv == DKIM_RESULT_PASS ||
			     arriving->cv == DKIM_RESULT_FAIL),
			    "our seal over a cv=%s chain of %u sets gives %s "
			    "with %u sets: %s\n%s", dkim_result_name(cv),
			    arriving->sets, dkim_result_name(now.cv), now.sets,
			    now.explanation, both);
	}
	*sealed_r = now;
	return both;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned options = data[0];
	enum record record = (options >> 3) & 3;
	unsigned hops = (options >> 5) & 3;
	size_t chunk = (options & 0x80) != 0 ? 1 : 13;
	data++;
	size--;

	struct outcome once = validate("", data, size, 0);
	struct outcome chunked = validate("", data, size, chunk);
	FUZZ_ASSERT(memcmp(&once, &chunked, sizeof(once)) == 0,
		    "chunks of %zu bytes change the outcome: cv=%s (%s) vs "
		    "cv=%s (%s)", chunk, dkim_result_name(once.cv),
		    once.explanation, dkim_result_name(chunked.cv),
		    chunked.explanation);

	if (hops == 0)
		return 0;
	struct outcome sealed;
	char *first = seal_and_check(options, record, "", data, size, &once,
				     &sealed);
	if (first != NULL && hops > 1) {
		/* The next hop records what it found. */
		enum record found = sealed.cv == DKIM_RESULT_PASS ?
			RECORD_PASS : RECORD_FAIL;
		struct outcome again;

		free(seal_and_check(options, found, first, data, size, &sealed,
				    &again));
	}
	free(first);
	return 0;
}

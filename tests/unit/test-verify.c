/* Signing and verifying together, through an in-memory resolver: every
 * algorithm and canonicalization, tampering, local policy, time, key
 * constraints, DNS failures, caching, limits and the verdict order. */
#include "dkim-private.h"
#include "tap.h"
#include "test-keys.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const char message[] =
	"Received: from a.example by b.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	"From: Joe <joe@example.com>\r\n"
	"To: Suzie <suzie@example.net>\r\n"
	"Subject:  Is dinner   ready?\r\n"
	"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	"Message-ID: <1@example.com>\r\n"
	"\r\n"
	"Hi.  \r\n\r\nWe lost the game.\r\n\r\n\r\n";

static dkim_privkey *rsa_key, *ed_key;
static char *rsa_record, *ed_record;

struct outcome {
	enum dkim_result verdict;
	enum dkim_result result;	/* of the first signature */
	enum dkim_reason reason;
	char explanation[512];
	size_t count;
	bool testing;
	enum dkim_dnssec dnssec;
};

static char *
sign_with(const char *msg, const struct dkim_sign_config *config)
{
	struct dkim_error error;
	dkim_signer *signer = dkim_signer_new();
	char *signed_msg = NULL;

	if (dkim_signer_add(signer, config, &error) == 0) {
		dkim_signer_feed(signer, msg, strlen(msg));
		if (dkim_signer_finish(signer, &error) == 0) {
			const char *fields = dkim_signer_fields(signer);
			signed_msg = malloc(strlen(fields) + strlen(msg) + 1);
			strcpy(signed_msg, fields);
			strcat(signed_msg, msg);
		}
	}
	if (signed_msg == NULL)
		tap_diag("signing failed: %s", error.text);
	dkim_signer_free(&signer);
	return signed_msg;
}

static void
default_sign_config(struct dkim_sign_config *config, dkim_privkey *key)
{
	dkim_sign_config_init(config);
	config->domain = "example.com";
	config->selector = key == ed_key ? "ed" : "rsa";
	config->key = key;
	config->timestamp = 1700000000;
}

static void
standard_dns(struct test_dns *dns)
{
	memset(dns, 0, sizeof(*dns));
	test_dns_add(dns, "rsa._domainkey.example.com", rsa_record);
	test_dns_add(dns, "ed._domainkey.example.com", ed_record);
}

static struct outcome
verify_full(const char *msg, struct test_dns *dns,
	    const struct dkim_verify_config *config, size_t chunk)
{
	dkim_resolver *resolver = dkim_resolver_new_custom(test_dns_lookup,
							   dns);
	dkim_verifier *verifier = dkim_verifier_new(config, resolver);
	struct outcome out;
	size_t len = strlen(msg);

	memset(&out, 0, sizeof(out));
	for (size_t pos = 0; pos < len; pos += chunk)
		dkim_verifier_feed(verifier, msg + pos,
				   len - pos < chunk ? len - pos : chunk);
	dkim_verifier_finish(verifier);
	out.verdict = dkim_verifier_verdict(verifier);
	out.count = dkim_verifier_signature_count(verifier);
	if (out.count > 0) {
		const struct dkim_signature_result *sig =
			dkim_verifier_signature(verifier, 0);
		out.result = sig->result;
		out.reason = sig->reason;
		out.testing = sig->key_testing;
		out.dnssec = sig->dnssec;
		snprintf(out.explanation, sizeof(out.explanation), "%s",
			 sig->explanation != NULL ? sig->explanation : "");
	}
	dkim_verifier_free(&verifier);
	dkim_resolver_free(&resolver);
	return out;
}

static struct outcome
verify_at(const char *msg, struct test_dns *dns, time_t now)
{
	struct dkim_verify_config config;

	dkim_verify_config_init(&config);
	config.now = now;
	return verify_full(msg, dns, &config, SIZE_MAX);
}

static void
expect(struct outcome out, enum dkim_result result, enum dkim_reason reason,
       const char *name)
{
	tap_ok(out.result == result && out.reason == reason, "%s", name);
	if (out.result != result || out.reason != reason)
		tap_diag("got %s/%s: %s", dkim_result_name(out.result),
			 dkim_reason_name(out.reason), out.explanation);
}

static char *
replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *result = malloc(strlen(text) + strlen(to) + 1);

	if (at == NULL)
		abort();
	sprintf(result, "%.*s%s%s", (int)(at - text), text, to,
		at + strlen(from));
	return result;
}

static char *
to_lf(const char *text)
{
	char *lf = malloc(strlen(text) + 1), *out = lf;

	for (; *text != '\0'; text++) {
		if (text[0] != '\r' || text[1] != '\n')
			*out++ = *text;
	}
	*out = '\0';
	return lf;
}

static void
test_round_trips(void)
{
	struct dkim_sign_config config;
	struct test_dns dns;

	standard_dns(&dns);
	for (int k = 0; k < 2; k++) {
		for (int h = 0; h < 2; h++) {
			for (int b = 0; b < 2; b++) {
				default_sign_config(&config, k ? ed_key : rsa_key);
				config.header_canon = h;
				config.body_canon = b;
				char *signed_msg = sign_with(message, &config);
				struct outcome out = verify_at(signed_msg, &dns, 0);
				expect(out, DKIM_RESULT_PASS, DKIM_REASON_NONE,
				       k ? "ed25519 round trip" : "rsa round trip");
				tap_diag("  c=%s/%s", h ? "relaxed" : "simple",
					 b ? "relaxed" : "simple");
				free(signed_msg);
			}
		}
	}

	default_sign_config(&config, rsa_key);
	char *signed_msg = sign_with(message, &config);
	char *lf = to_lf(signed_msg);
	expect(verify_at(lf, &dns, 0), DKIM_RESULT_PASS, DKIM_REASON_NONE,
	       "a CRLF-signed message verifies with LF line endings");
	struct dkim_verify_config vconfig;
	dkim_verify_config_init(&vconfig);
	expect(verify_full(signed_msg, &dns, &vconfig, 1), DKIM_RESULT_PASS,
	       DKIM_REASON_NONE, "fed one byte at a time");
	char *lf_message = to_lf(message);
	char *lf_signed = sign_with(lf_message, &config);
	size_t fields_len = strlen(signed_msg) - strlen(message);
	tap_ok(lf_signed != NULL &&
	       strncmp(lf_signed, signed_msg, fields_len) == 0,
	       "LF input gives the same signature as CRLF input");
	free(lf_message);

	const char *fields = signed_msg;
	bool short_lines = true;
	for (const char *line = fields; line != NULL && strncmp(line, "Received", 8) != 0;) {
		const char *eol = strstr(line, "\r\n");
		if (eol == NULL || eol - line > 78)
			short_lines = false;
		line = eol != NULL ? eol + 2 : NULL;
	}
	tap_ok(short_lines, "signature folded at 78 characters");
	tap_ok(strstr(signed_msg, "h=From:From:") != NULL,
	       "From oversigned by default");
	free(lf);
	free(lf_signed);
	free(signed_msg);
}

static void
test_tampering(void)
{
	struct dkim_sign_config config;
	struct test_dns dns;

	standard_dns(&dns);
	default_sign_config(&config, rsa_key);
	char *signed_msg = sign_with(message, &config);
	char *body = replace(signed_msg, "We lost", "We won");
	char *subject = replace(signed_msg, "dinner", "lunch");
	char *added = replace(signed_msg, "Received:", "X-Added: yes\r\nReceived:");
	char *from = replace(signed_msg, "Received:",
			     "From: Evil <ceo@example.com>\r\nReceived:");

	expect(verify_at(body, &dns, 0), DKIM_RESULT_FAIL,
	       DKIM_REASON_BODY_HASH_MISMATCH, "changed body fails");
	expect(verify_at(subject, &dns, 0), DKIM_RESULT_FAIL,
	       DKIM_REASON_SIGNATURE_MISMATCH, "changed Subject fails");
	expect(verify_at(added, &dns, 0), DKIM_RESULT_PASS, DKIM_REASON_NONE,
	       "an added unsigned field does not matter");
	/* The oversigned From makes the hash differ too, but the reason a
	 * reader needs is the ambiguous author. */
	struct outcome out = verify_at(from, &dns, 0);
	expect(out, DKIM_RESULT_POLICY, DKIM_REASON_MULTIPLE_FROM,
	       "an added From above an oversigned one is policy");
	tap_ok(strstr(out.explanation, "2 From fields") != NULL,
	       "which the explanation says: %s", out.explanation);
	free(signed_msg);
	free(from);

	const char *no_oversign[] = { NULL };
	config.oversign = no_oversign;
	signed_msg = sign_with(message, &config);
	from = replace(signed_msg, "Received:",
		       "From: Evil <ceo@example.com>\r\nReceived:");
	out = verify_at(from, &dns, 0);
	expect(out, DKIM_RESULT_POLICY, DKIM_REASON_MULTIPLE_FROM,
	       "without oversigning, two From fields are policy");
	tap_is_int(out.verdict, DKIM_RESULT_POLICY, "verdict policy");
	free(signed_msg);
	free(from);
	free(body);
	free(subject);
	free(added);
}

static void
test_body_length(void)
{
	struct dkim_sign_config config;
	struct dkim_verify_config vconfig;
	struct test_dns dns;

	standard_dns(&dns);
	default_sign_config(&config, rsa_key);
	config.body_length = true;
	char *signed_msg = sign_with(message, &config);
	char *appended = malloc(strlen(signed_msg) + 64);
	sprintf(appended, "%sBuy cheap pills!\r\n", signed_msg);

	expect(verify_at(signed_msg, &dns, 0), DKIM_RESULT_PASS,
	       DKIM_REASON_NONE, "l= covering the whole body passes");
	expect(verify_at(appended, &dns, 0), DKIM_RESULT_POLICY,
	       DKIM_REASON_PARTIAL_BODY, "content after l= is policy");
	dkim_verify_config_init(&vconfig);
	vconfig.body_length = DKIM_BODY_LENGTH_ACCEPT;
	expect(verify_full(appended, &dns, &vconfig, SIZE_MAX),
	       DKIM_RESULT_PASS, DKIM_REASON_NONE,
	       "content after l= accepted when configured");
	char *cut = replace(signed_msg, "We lost the game.\r\n", "");
	expect(verify_at(cut, &dns, 0), DKIM_RESULT_PERMERROR,
	       DKIM_REASON_BAD_BODY_LENGTH, "a body shorter than l=");
	free(cut);
	free(appended);
	free(signed_msg);
}

static void
test_times(void)
{
	struct dkim_sign_config config;
	struct test_dns dns;

	standard_dns(&dns);
	default_sign_config(&config, rsa_key);
	config.timestamp = 1000000;
	config.expire_secs = 100;
	char *signed_msg = sign_with(message, &config);
	struct outcome out = verify_at(signed_msg, &dns, 1000000 + 1000);

	expect(out, DKIM_RESULT_PERMERROR, DKIM_REASON_EXPIRED,
	       "expired signature");
	tap_ok(strstr(out.explanation, "expired at 1970-01-12 13:48:20 UTC") != NULL,
	       "explanation says when: %s", out.explanation);
	expect(verify_at(signed_msg, &dns, 1000000 + 350), DKIM_RESULT_PASS,
	       DKIM_REASON_NONE, "expired, but within the clock drift");
	expect(verify_at(signed_msg, &dns, 1000000 - 1000),
	       DKIM_RESULT_PERMERROR, DKIM_REASON_FUTURE,
	       "timestamp in the future");
	expect(verify_at(signed_msg, &dns, 1000000 - 200), DKIM_RESULT_PASS,
	       DKIM_REASON_NONE, "future, but within the clock drift");
	free(signed_msg);
}

static char *
record_with(const char *prefix, const char *record)
{
	char *text = malloc(strlen(prefix) + strlen(record) + 1);

	sprintf(text, "%s%s", prefix, record);
	return text;
}

static void
test_key_constraints(void)
{
	struct dkim_sign_config config;
	struct dkim_verify_config vconfig;
	struct test_dns dns;
	const char *name = "rsa._domainkey.example.com";

	default_sign_config(&config, rsa_key);
	config.identity = "joe@mail.example.com";
	char *signed_msg = sign_with(message, &config);
	char *p = strstr(rsa_record, "p=");
	char *strict = record_with("t=s; ", p);
	char *testing = record_with("t=y; ", p);
	char *sha1 = record_with("h=sha1; ", p);
	char *service = record_with("s=tlsrpt; ", p);
	char *ed_type = record_with("k=ed25519; ", p);

	static const struct {
		int record;
		enum dkim_result result;
		enum dkim_reason reason;
		const char *name;
	} cases[] = {
		{ 0, DKIM_RESULT_PERMERROR, DKIM_REASON_KEY_REVOKED, "revoked key" },
		{ 1, DKIM_RESULT_PERMERROR, DKIM_REASON_KEY_STRICT_IDENTITY,
		  "t=s and i= in a subdomain" },
		{ 2, DKIM_RESULT_PASS, DKIM_REASON_NONE, "t=y still verifies" },
		{ 3, DKIM_RESULT_PERMERROR, DKIM_REASON_KEY_HASH_MISMATCH,
		  "key h=sha1" },
		{ 4, DKIM_RESULT_PERMERROR, DKIM_REASON_KEY_SERVICE,
		  "key s=tlsrpt" },
		{ 5, DKIM_RESULT_PERMERROR, DKIM_REASON_KEY_DATA,
		  "RSA data under k=ed25519" },
	};
	const char *records[] = { "v=DKIM1; p=", strict, testing, sha1,
				  service, ed_type };
	for (size_t i = 0; i < DKIM_N_ELEMENTS(cases); i++) {
		memset(&dns, 0, sizeof(dns));
		test_dns_add(&dns, name, records[cases[i].record]);
		struct outcome out = verify_at(signed_msg, &dns, 0);
		expect(out, cases[i].result, cases[i].reason, cases[i].name);
		if (cases[i].record == 2)
			tap_ok(out.testing, "testing flag reported");
	}

	memset(&dns, 0, sizeof(dns));
	test_dns_add(&dns, name, rsa_record);
	test_dns_add(&dns, name, rsa_record);
	expect(verify_at(signed_msg, &dns, 0), DKIM_RESULT_PERMERROR,
	       DKIM_REASON_KEY_MULTIPLE, "two TXT records");

	memset(&dns, 0, sizeof(dns));
	test_dns_add(&dns, name, ed_record);
	expect(verify_at(signed_msg, &dns, 0), DKIM_RESULT_PERMERROR,
	       DKIM_REASON_KEY_TYPE_MISMATCH, "Ed25519 key for rsa-sha256");

	memset(&dns, 0, sizeof(dns));
	struct outcome out = verify_at(signed_msg, &dns, 0);
	expect(out, DKIM_RESULT_PERMERROR, DKIM_REASON_KEY_NOT_FOUND,
	       "no key");
	tap_is_str(out.explanation, "no key at rsa._domainkey.example.com",
		   "no-key explanation names the record");

	standard_dns(&dns);
	dkim_verify_config_init(&vconfig);
	vconfig.min_rsa_bits = 4096;
	expect(verify_full(signed_msg, &dns, &vconfig, SIZE_MAX),
	       DKIM_RESULT_PERMERROR, DKIM_REASON_KEY_TOO_SMALL,
	       "key below the configured minimum");
	vconfig.min_rsa_bits = 512;
	expect(verify_full(signed_msg, &dns, &vconfig, SIZE_MAX),
	       DKIM_RESULT_PASS, DKIM_REASON_NONE,
	       "a minimum below 1024 counts as 1024");

	free(strict);
	free(testing);
	free(sha1);
	free(service);
	free(ed_type);
	free(signed_msg);
}

static void
test_dns_failures(void)
{
	struct dkim_sign_config config;
	struct test_dns dns;
	const char *name = "rsa._domainkey.example.com";

	default_sign_config(&config, rsa_key);
	char *signed_msg = sign_with(message, &config);

	memset(&dns, 0, sizeof(dns));
	test_dns_fail(&dns, name, DKIM_DNS_TIMEOUT);
	struct outcome out = verify_at(signed_msg, &dns, 0);
	expect(out, DKIM_RESULT_TEMPERROR, DKIM_REASON_DNS_TIMEOUT,
	       "DNS timeout");
	tap_is_int(out.verdict, DKIM_RESULT_TEMPERROR, "verdict temperror");

	memset(&dns, 0, sizeof(dns));
	test_dns_fail(&dns, name, DKIM_DNS_ERROR);
	expect(verify_at(signed_msg, &dns, 0), DKIM_RESULT_TEMPERROR,
	       DKIM_REASON_DNS_ERROR, "DNS server failure");

	memset(&dns, 0, sizeof(dns));
	test_dns_add(&dns, name, rsa_record);
	dns.records[0].dnssec = DKIM_DNSSEC_BOGUS;
	expect(verify_at(signed_msg, &dns, 0), DKIM_RESULT_PERMERROR,
	       DKIM_REASON_DNSSEC_BOGUS, "bogus DNSSEC never passes");
	dns.records[0].dnssec = DKIM_DNSSEC_SECURE;
	out = verify_at(signed_msg, &dns, 0);
	tap_ok(out.result == DKIM_RESULT_PASS &&
	       out.dnssec == DKIM_DNSSEC_SECURE, "secure key reported");
	free(signed_msg);
}

static void
test_limits_and_cache(void)
{
	struct dkim_sign_config config;
	struct dkim_verify_config vconfig;
	struct test_dns dns;
	struct dkim_error error;

	/* Three signatures by one key: one lookup. */
	dkim_signer *signer = dkim_signer_new();
	default_sign_config(&config, rsa_key);
	for (int i = 0; i < 3; i++)
		dkim_signer_add(signer, &config, &error);
	dkim_signer_feed(signer, message, strlen(message));
	tap_ok(dkim_signer_finish(signer, &error) == 0, "three signatures");
	char *signed_msg = malloc(strlen(dkim_signer_fields(signer)) +
				  sizeof(message));
	sprintf(signed_msg, "%s%s", dkim_signer_fields(signer), message);
	dkim_signer_free(&signer);

	standard_dns(&dns);
	dkim_resolver *resolver = dkim_resolver_new_custom(test_dns_lookup,
							   &dns);
	dkim_verify_config_init(&vconfig);
	vconfig.max_signatures = 2;
	for (int round = 0; round < 2; round++) {
		dkim_verifier *verifier = dkim_verifier_new(&vconfig, resolver);
		dkim_verifier_feed(verifier, signed_msg, strlen(signed_msg));
		dkim_verifier_finish(verifier);
		if (round == 0) {
			tap_is_int(dkim_verifier_signature_count(verifier), 2,
				   "signatures evaluated up to the cap");
			tap_is_int(dkim_verifier_skipped_signatures(verifier),
				   1, "the rest counted as skipped");
			tap_is_str(dkim_verifier_from_domain(verifier),
				   "example.com", "From domain");
		}
		dkim_verifier_free(&verifier);
	}
	tap_is_int(dns.lookups, 1,
		   "one DNS lookup for two messages with one key");
	dkim_resolver_free(&resolver);

	/* More signatures than the library ever evaluates, and a cap far
	 * above it (a configuration error, not an allocation of that
	 * size). */
	signer = dkim_signer_new();
	for (int i = 0; i < DKIM_MAX_SIGNATURES_LIMIT + 2; i++)
		dkim_signer_add(signer, &config, &error);
	dkim_signer_feed(signer, message, strlen(message));
	tap_ok(dkim_signer_finish(signer, &error) == 0, "%d signatures",
	       DKIM_MAX_SIGNATURES_LIMIT + 2);
	char *many_signed = malloc(strlen(dkim_signer_fields(signer)) +
				   sizeof(message));
	sprintf(many_signed, "%s%s", dkim_signer_fields(signer), message);
	dkim_signer_free(&signer);
	resolver = dkim_resolver_new_custom(test_dns_lookup, &dns);
	dkim_verify_config_init(&vconfig);
	vconfig.max_signatures = UINT_MAX;
	dkim_verifier *verifier = dkim_verifier_new(&vconfig, resolver);
	dkim_verifier_feed(verifier, many_signed, strlen(many_signed));
	dkim_verifier_finish(verifier);
	tap_is_int(dkim_verifier_signature_count(verifier),
		   DKIM_MAX_SIGNATURES_LIMIT,
		   "max_signatures = UINT_MAX: DKIM_MAX_SIGNATURES_LIMIT "
		   "evaluated");
	tap_is_int(dkim_verifier_skipped_signatures(verifier), 2,
		   "... and the rest counted as skipped");
	dkim_verifier_free(&verifier);
	dkim_resolver_free(&resolver);
	free(many_signed);

	dkim_verify_config_init(&vconfig);
	vconfig.max_header_bytes = 100;
	struct outcome out = verify_full(signed_msg, &dns, &vconfig, SIZE_MAX);
	expect(out, DKIM_RESULT_PERMERROR, DKIM_REASON_HEADER_TOO_LARGE,
	       "header block over the cap");
	out = verify_full("Subject: x\r\n\r\nbody\r\n", &dns, &vconfig, 7);
	tap_ok(out.verdict == DKIM_RESULT_NONE && out.count == 0,
	       "unsigned message: none");
	free(signed_msg);
}

static void
test_verdict_order(void)
{
	struct dkim_sign_config config;
	struct dkim_error error;
	struct test_dns dns;

	/* Signed by rsa (its key missing: permerror) and ed (good). */
	dkim_signer *signer = dkim_signer_new();
	default_sign_config(&config, rsa_key);
	dkim_signer_add(signer, &config, &error);
	default_sign_config(&config, ed_key);
	dkim_signer_add(signer, &config, &error);
	dkim_signer_feed(signer, message, strlen(message));
	dkim_signer_finish(signer, &error);
	char *signed_msg = malloc(strlen(dkim_signer_fields(signer)) +
				  sizeof(message));
	sprintf(signed_msg, "%s%s", dkim_signer_fields(signer), message);
	dkim_signer_free(&signer);

	memset(&dns, 0, sizeof(dns));
	test_dns_add(&dns, "ed._domainkey.example.com", ed_record);
	tap_is_int(verify_at(signed_msg, &dns, 0).verdict, DKIM_RESULT_PASS,
		   "permerror + pass: pass");
	memset(&dns, 0, sizeof(dns));
	test_dns_fail(&dns, "ed._domainkey.example.com", DKIM_DNS_TIMEOUT);
	tap_is_int(verify_at(signed_msg, &dns, 0).verdict,
		   DKIM_RESULT_TEMPERROR, "permerror + temperror: temperror");
	char *tampered = replace(signed_msg, "We lost", "We won");
	memset(&dns, 0, sizeof(dns));
	test_dns_add(&dns, "ed._domainkey.example.com", ed_record);
	tap_is_int(verify_at(tampered, &dns, 0).verdict, DKIM_RESULT_FAIL,
		   "permerror + fail: fail");
	free(tampered);
	free(signed_msg);
}

static void
test_signing_refusals(void)
{
	struct dkim_sign_config config;
	struct dkim_error error;

	default_sign_config(&config, rsa_key);
	char *two_from = replace(message, "To:", "From: x@example.org\r\nTo:");
	char *two_mailboxes = replace(message, "<joe@example.com>",
				      "<joe@example.com>, x@example.org");
	char *spoofed = replace(message, "<joe@example.com>",
				"<joe@example.com> x@example.org");
	const char *inputs[] = {
		"Subject: x\r\n\r\nbody\r\n", two_from, two_mailboxes, spoofed
	};
	const char *why[] = {
		"no From field", "several From fields",
		"several mailboxes in the From field",
		"the From field is not valid address syntax"
	};
	for (size_t i = 0; i < DKIM_N_ELEMENTS(inputs); i++) {
		dkim_signer *signer = dkim_signer_new();
		dkim_signer_add(signer, &config, &error);
		dkim_signer_feed(signer, inputs[i], strlen(inputs[i]));
		tap_ok(dkim_signer_finish(signer, &error) < 0 &&
		       strstr(error.text, why[i]) != NULL,
		       "refused: %s", error.text);
		dkim_signer_free(&signer);
	}
	free(two_from);
	free(two_mailboxes);
	free(spoofed);

	dkim_signer *signer = dkim_signer_new();
	config.identity = "joe@example.org";
	tap_ok(dkim_signer_add(signer, &config, &error) < 0,
	       "identity outside d= refused: %s", error.text);
	config.identity = NULL;
	config.domain = "bad domain";
	tap_ok(dkim_signer_add(signer, &config, &error) < 0,
	       "invalid domain refused: %s", error.text);
	dkim_signer_free(&signer);
}

static void
test_key_files(void)
{
	char dir[] = "/tmp/dkim-test-XXXXXX", path[64];
	struct dkim_error error;
	dkim_privkey *key;

	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/key.private", dir);
	FILE *file = fopen(path, "w");
	fputs("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=\n", file);
	fclose(file);

	chmod(path, 0644);
	tap_ok(dkim_privkey_load(path, 0, &key, &error) < 0 &&
	       strstr(error.text, "group or others") != NULL,
	       "world-readable key refused: %s", error.text);
	tap_ok(dkim_privkey_load(path, DKIM_PRIVKEY_ALLOW_UNSAFE, &key,
				 &error) == 0, "accepted when allowed");
	char *record = key != NULL ? dkim_privkey_public_record(key) : NULL;
	tap_is_str(record, "v=DKIM1; k=ed25519; "
		   "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
		   "RFC 8463 seed gives the RFC's public key");
	free(record);
	dkim_privkey_free(&key);

	chmod(path, 0600);
	tap_ok(dkim_privkey_load(path, 0, &key, &error) == 0,
	       "mode 0600 accepted");
	dkim_pubkey *pub = NULL;
	struct dkim_key_record info;
	dkim_key_record_parse(ed_record, strlen(ed_record), &info, &pub, NULL);
	tap_ok(!dkim_privkey_matches(key, pub), "another key does not match");
	dkim_pubkey_free(&pub);
	dkim_privkey_free(&key);

	file = fopen(path, "w");
	fputs("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n",
	      file);
	fclose(file);
	tap_ok(dkim_privkey_load(path, 0, &key, &error) < 0,
	       "malformed key refused: %s", error.text);
	unlink(path);
	tap_ok(dkim_privkey_load(path, 0, &key, &error) < 0 &&
	       strstr(error.text, "cannot open") != NULL,
	       "missing key file: %s", error.text);
	rmdir(dir);
}

int
main(void)
{
	rsa_key = test_key_generate("RSA", 1024);
	ed_key = test_key_generate("ED25519", 0);
	rsa_record = dkim_privkey_public_record(rsa_key);
	ed_record = dkim_privkey_public_record(ed_key);

	test_round_trips();
	test_tampering();
	test_body_length();
	test_times();
	test_key_constraints();
	test_dns_failures();
	test_limits_and_cache();
	test_verdict_order();
	test_signing_refusals();
	test_key_files();

	free(rsa_record);
	free(ed_record);
	dkim_privkey_free(&rsa_key);
	dkim_privkey_free(&ed_key);
	return tap_done();
}

/* Verification (RFC 6376 §6) of every signature of one message, streamed.
 *
 * While the header block streams in, each DKIM-Signature field is parsed
 * as soon as it is complete and its key query starts at once, so DNS runs
 * while the body is hashed.  At the end, each signature is judged in the
 * RFC's order: the signature itself, the key, the body hash, the header
 * hash; then local policy (several From fields, unsigned body after l=). */
#include "dkim-private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DKIM_DEFAULT_MAX_SIGNATURES 5
#define DKIM_DEFAULT_DNS_TIMEOUT_MSECS 5000
#define DKIM_DEFAULT_CLOCK_DRIFT 300
#define DKIM_DEFAULT_MAX_HEADER_BYTES (4 * 1024 * 1024)

struct verify_sig {
	struct dkim_signature sig;
	char *qname;
	struct dkim_dns_query *query;		/* NULL when not looked up */
	struct dkim_body_canon *body_canon;	/* NULL when not hashed */
	struct dkim_body_hash *body_hash;
	struct dkim_signature_result result;
	char *explanation;
};

struct dkim_verifier {
	struct dkim_verify_config config;
	dkim_resolver *resolver;
	struct dkim_headers headers;
	size_t fields_seen;
	bool in_body;
	bool finished;

	struct dkim_body_canon body_canons[2];	/* by enum dkim_canon */
	bool body_canon_used[2];

	struct verify_sig *sigs;
	size_t sig_count;
	size_t skipped;

	size_t from_count;
	size_t from_index;
	char *from_domain;
	enum dkim_result verdict;
};

void
dkim_verify_config_init(struct dkim_verify_config *config)
{
	memset(config, 0, sizeof(*config));
	config->max_signatures = DKIM_DEFAULT_MAX_SIGNATURES;
	config->min_rsa_bits = DKIM_RSA_MIN_BITS;
	config->dns_timeout_msecs = DKIM_DEFAULT_DNS_TIMEOUT_MSECS;
	config->clock_drift = DKIM_DEFAULT_CLOCK_DRIFT;
	config->body_length = DKIM_BODY_LENGTH_REFUSE_PARTIAL;
	config->max_header_bytes = DKIM_DEFAULT_MAX_HEADER_BYTES;
}

dkim_verifier *
dkim_verifier_new(const struct dkim_verify_config *config,
		  dkim_resolver *resolver)
{
	dkim_verifier *verifier = dkim_calloc(1, sizeof(*verifier));

	verifier->config = *config;
	if (verifier->config.max_signatures == 0)
		verifier->config.max_signatures = 1;
	if (verifier->config.min_rsa_bits < DKIM_RSA_MIN_BITS)
		verifier->config.min_rsa_bits = DKIM_RSA_MIN_BITS;
	verifier->resolver = resolver;
	dkim_headers_init(&verifier->headers, config->max_header_bytes);
	verifier->sigs = dkim_calloc(verifier->config.max_signatures,
				     sizeof(*verifier->sigs));
	for (size_t i = 0; i < DKIM_N_ELEMENTS(verifier->body_canons); i++)
		dkim_body_canon_init(&verifier->body_canons[i],
				     (enum dkim_canon)i);
	return verifier;
}

static void DKIM_ATTR_FORMAT(3, 4)
judge(struct verify_sig *vs, enum dkim_reason reason, const char *fmt, ...)
{
	char text[512];
	va_list args;

	va_start(args, fmt);
	vsnprintf(text, sizeof(text), fmt, args);
	va_end(args);
	vs->result.result = dkim_reason_result(reason);
	vs->result.reason = reason;
	free(vs->explanation);
	/* Every message-derived part is sanitized where it is taken; this
	 * is the backstop that keeps the dkim.h promise whatever a future
	 * message text quotes. */
	vs->explanation = dkim_sanitize(text, strlen(text));
	vs->result.explanation = vs->explanation;
}

static void
add_signature(dkim_verifier *verifier, size_t field_index)
{
	const struct dkim_header_field *field =
		&verifier->headers.fields[field_index];

	if (verifier->sig_count == verifier->config.max_signatures) {
		verifier->skipped++;
		return;
	}
	struct verify_sig *vs = &verifier->sigs[verifier->sig_count++];
	struct dkim_signature *sig = &vs->sig;

	dkim_signature_parse(sig, dkim_headers_field(&verifier->headers,
						     field_index), field->len);
	if (sig->error != DKIM_REASON_NONE)
		return;
	vs->qname = dkim_strdup_printf("%s._domainkey.%.*s", sig->selector,
				       (int)sig->domain_len, sig->domain_raw);
	vs->query = dkim_resolver_start(verifier->resolver, vs->qname);
}

static void
scan_new_fields(dkim_verifier *verifier)
{
	struct dkim_headers *headers = &verifier->headers;

	for (; verifier->fields_seen < headers->count; verifier->fields_seen++) {
		size_t i = verifier->fields_seen;

		if (dkim_headers_name_is(headers, i, "DKIM-Signature"))
			add_signature(verifier, i);
		else if (dkim_headers_name_is(headers, i, "From")) {
			verifier->from_count++;
			verifier->from_index = i;
		}
	}
}

static void
start_body(dkim_verifier *verifier)
{
	verifier->in_body = true;
	for (size_t i = 0; i < verifier->sig_count; i++) {
		struct verify_sig *vs = &verifier->sigs[i];
		const struct dkim_signature *sig = &vs->sig;

		if (sig->error != DKIM_REASON_NONE)
			continue;
		vs->body_canon = &verifier->body_canons[sig->body_canon];
		verifier->body_canon_used[sig->body_canon] = true;
		vs->body_hash = dkim_body_canon_hash(vs->body_canon,
			sig->has_length ? sig->length : UINT64_MAX);
	}
}

static void
feed_body(dkim_verifier *verifier, const void *data, size_t size)
{
	for (size_t i = 0; i < DKIM_N_ELEMENTS(verifier->body_canons); i++) {
		if (verifier->body_canon_used[i])
			dkim_body_canon_feed(&verifier->body_canons[i], data,
					     size);
	}
}

void
dkim_verifier_feed(dkim_verifier *verifier, const void *data, size_t size)
{
	if (verifier->finished)
		return;
	if (!verifier->in_body) {
		size_t used = dkim_headers_feed(&verifier->headers, data, size);

		scan_new_fields(verifier);
		if (!verifier->headers.complete)
			return;
		start_body(verifier);
		data = (const char *)data + used;
		size -= used;
	}
	feed_body(verifier, data, size);
}

/* ---- judging one signature ---- */

static bool
check_times(const dkim_verifier *verifier, struct verify_sig *vs)
{
	const struct dkim_signature *sig = &vs->sig;
	time_t now = verifier->config.now != 0 ? verifier->config.now :
		time(NULL);
	time_t drift = (time_t)verifier->config.clock_drift;
	char when[64];

	if (sig->expiration != 0 && now > sig->expiration + drift) {
		dkim_format_time(sig->expiration, when, sizeof(when));
		judge(vs, DKIM_REASON_EXPIRED, "signature expired at %s", when);
		return false;
	}
	if (sig->timestamp != 0 && sig->timestamp > now + drift) {
		dkim_format_time(sig->timestamp, when, sizeof(when));
		judge(vs, DKIM_REASON_FUTURE,
		      "signature timestamp %s is in the future", when);
		return false;
	}
	return true;
}

/* Waits for the key and checks it fits the signature; returns the key
 * or NULL after judging the signature. */
static dkim_pubkey *
fetch_key(dkim_verifier *verifier, struct verify_sig *vs,
	  uint64_t deadline_msecs)
{
	const struct dkim_signature *sig = &vs->sig;
	struct dkim_key_record record;
	struct dkim_error error;
	dkim_pubkey *key;

	if (!dkim_resolver_wait(verifier->resolver, vs->query,
				deadline_msecs)) {
		judge(vs, DKIM_REASON_DNS_TIMEOUT,
		      "DNS timeout looking up the key at %s", vs->qname);
		return NULL;
	}
	const struct dkim_dns_answer *answer = &vs->query->answer;
	vs->result.dnssec = answer->dnssec;
	if (answer->dnssec == DKIM_DNSSEC_BOGUS) {
		judge(vs, DKIM_REASON_DNSSEC_BOGUS,
		      "DNSSEC validation of the key at %s failed (bogus)",
		      vs->qname);
		return NULL;
	}
	switch (answer->status) {
	case DKIM_DNS_FOUND:
		break;
	case DKIM_DNS_NOT_FOUND:
		judge(vs, DKIM_REASON_KEY_NOT_FOUND, "no key at %s", vs->qname);
		return NULL;
	case DKIM_DNS_TIMEOUT:
		judge(vs, DKIM_REASON_DNS_TIMEOUT,
		      "DNS timeout looking up the key at %s", vs->qname);
		return NULL;
	case DKIM_DNS_ERROR:
		judge(vs, DKIM_REASON_DNS_ERROR, "DNS error looking up %s: %s",
		      vs->qname, answer->detail != NULL ? answer->detail :
		      "server failure");
		return NULL;
	}
	if (answer->record_count != 1) {
		judge(vs, DKIM_REASON_KEY_MULTIPLE,
		      "%zu TXT records at %s where one key record belongs",
		      answer->record_count, vs->qname);
		return NULL;
	}

	enum dkim_reason reason =
		dkim_key_record_parse(answer->records[0].data,
				      answer->records[0].len, &record, &key,
				      &error);
	vs->result.key_type = record.type;
	vs->result.key_bits = record.bits;
	vs->result.key_testing = record.testing;
	if (reason != DKIM_REASON_NONE) {
		judge(vs, reason, "%s (key at %s)", error.text, vs->qname);
		return NULL;
	}
	if (record.revoked) {
		judge(vs, DKIM_REASON_KEY_REVOKED, "key revoked (empty p= at %s)",
		      vs->qname);
	} else if (record.type != sig->key_type) {
		judge(vs, DKIM_REASON_KEY_TYPE_MISMATCH,
		      "key at %s is k=%s but the signature is a=%s", vs->qname,
		      dkim_key_type_name(record.type), sig->algorithm);
	} else if (!record.allows_sha256) {
		judge(vs, DKIM_REASON_KEY_HASH_MISMATCH,
		      "key at %s does not allow sha256 (h= tag)", vs->qname);
	} else if (!record.email_service) {
		judge(vs, DKIM_REASON_KEY_SERVICE,
		      "key at %s is not for email (s= tag)", vs->qname);
	} else if (record.strict_identity && sig->identity_domain != NULL &&
		   !dkim_mem_equal_icase(sig->identity_domain,
					 strlen(sig->identity_domain),
					 sig->domain_raw, sig->domain_len)) {
		judge(vs, DKIM_REASON_KEY_STRICT_IDENTITY,
		      "key at %s has t=s, which forbids identity i=%s "
		      "in a subdomain of d=%s", vs->qname, sig->identity,
		      sig->domain);
	} else if (record.type == DKIM_KEY_RSA &&
		   record.bits < verifier->config.min_rsa_bits) {
		judge(vs, DKIM_REASON_KEY_TOO_SMALL,
		      "RSA key too small (%u bits, %u required)", record.bits,
		      verifier->config.min_rsa_bits);
	} else {
		return key;
	}
	dkim_pubkey_free(&key);
	return NULL;
}

static void
check_signature(dkim_verifier *verifier, struct verify_sig *vs,
		const dkim_pubkey *key)
{
	const struct dkim_signature *sig = &vs->sig;
	unsigned char digest[DKIM_SHA256_LEN];

	if (sig->has_length && sig->length > vs->body_canon->length) {
		judge(vs, DKIM_REASON_BAD_BODY_LENGTH,
		      "l=%llu is longer than the body (%llu bytes): "
		      "body cut after signing?",
		      (unsigned long long)sig->length,
		      (unsigned long long)vs->body_canon->length);
		return;
	}
	if (memcmp(vs->body_hash->digest, sig->bh, DKIM_SHA256_LEN) != 0) {
		judge(vs, DKIM_REASON_BODY_HASH_MISMATCH,
		      "body hash mismatch: body changed after signing "
		      "(footer added by a list?)");
		return;
	}

	dkim_hash_signed_headers(&verifier->headers, sig->header_canon,
				 sig->signed_headers, sig->signed_header_count,
				 sig->field, sig->field_len, sig->b_value_start,
				 sig->b_value_end, digest);
	switch (dkim_pubkey_verify(key, digest, sig->b, sig->b_len)) {
	case DKIM_VERIFY_OK:
		break;
	case DKIM_VERIFY_BAD_SIGNATURE:
		judge(vs, DKIM_REASON_SIGNATURE_MISMATCH,
		      "signature mismatch: a signed header changed");
		return;
	case DKIM_VERIFY_BAD_LENGTH:
		judge(vs, DKIM_REASON_SIGNATURE_MISMATCH,
		      "signature mismatch: b= holds %zu bytes, wrong for a "
		      "%u-bit %s key", sig->b_len, key->bits,
		      dkim_key_type_name(key->type));
		return;
	case DKIM_VERIFY_INTERNAL:
		judge(vs, DKIM_REASON_INTERNAL,
		      "internal error: the crypto library failed");
		return;
	}

	if (verifier->from_count > 1) {
		judge(vs, DKIM_REASON_MULTIPLE_FROM,
		      "valid signature, but the message has %zu From fields",
		      verifier->from_count);
	} else if (sig->has_length &&
		   vs->body_canon->length > sig->length &&
		   verifier->config.body_length ==
		   DKIM_BODY_LENGTH_REFUSE_PARTIAL) {
		judge(vs, DKIM_REASON_PARTIAL_BODY,
		      "valid signature, but l=%llu leaves %llu body bytes "
		      "unsigned (content appended?)",
		      (unsigned long long)sig->length,
		      (unsigned long long)(vs->body_canon->length -
					   sig->length));
	} else {
		vs->result.result = DKIM_RESULT_PASS;
	}
}

static void
evaluate(dkim_verifier *verifier, struct verify_sig *vs,
	 uint64_t deadline_msecs)
{
	const struct dkim_signature *sig = &vs->sig;

	vs->result.domain = sig->domain;
	vs->result.selector = sig->selector;
	vs->result.identity = sig->identity;
	vs->result.algorithm = sig->algorithm;
	vs->result.b = sig->b_text;
	vs->result.timestamp = sig->timestamp;
	vs->result.expiration = sig->expiration;

	if (verifier->headers.overflow) {
		judge(vs, DKIM_REASON_HEADER_TOO_LARGE,
		      "header block larger than %zu bytes",
		      verifier->config.max_header_bytes);
		return;
	}
	if (sig->error != DKIM_REASON_NONE) {
		judge(vs, sig->error, "%s", sig->error_text);
		return;
	}
	if (!check_times(verifier, vs))
		return;

	dkim_pubkey *key = fetch_key(verifier, vs, deadline_msecs);
	if (key == NULL)
		return;
	check_signature(verifier, vs, key);
	dkim_pubkey_free(&key);
}

/* See dkim_verifier_verdict() in dkim.h for the order. */
static enum dkim_result
compute_verdict(const dkim_verifier *verifier)
{
	static const enum dkim_result precedence[] = {
		DKIM_RESULT_PASS, DKIM_RESULT_TEMPERROR, DKIM_RESULT_FAIL,
		DKIM_RESULT_POLICY, DKIM_RESULT_PERMERROR, DKIM_RESULT_NEUTRAL,
	};

	for (size_t p = 0; p < DKIM_N_ELEMENTS(precedence); p++) {
		for (size_t i = 0; i < verifier->sig_count; i++) {
			if (verifier->sigs[i].result.result == precedence[p])
				return precedence[p];
		}
	}
	return DKIM_RESULT_NONE;
}

void
dkim_verifier_finish(dkim_verifier *verifier)
{
	if (verifier->finished)
		return;
	if (!verifier->in_body) {
		dkim_headers_finish(&verifier->headers);
		scan_new_fields(verifier);
		start_body(verifier);
	}
	for (size_t i = 0; i < DKIM_N_ELEMENTS(verifier->body_canons); i++) {
		if (verifier->body_canon_used[i])
			dkim_body_canon_finish(&verifier->body_canons[i]);
	}
	verifier->finished = true;

	/* Too large to keep: judged (in evaluate()) as one unusable
	 * signature, since what the dropped part held is unknown. */
	if (verifier->headers.overflow && verifier->sig_count == 0)
		verifier->sig_count = 1;

	if (verifier->from_count == 1) {
		const struct dkim_header_field *from =
			&verifier->headers.fields[verifier->from_index];
		const char *field = dkim_headers_field(&verifier->headers,
						       verifier->from_index);
		const char *value = (const char *)memchr(field, ':', from->len) + 1;
		verifier->from_domain = dkim_from_domain(value,
			from->len - (size_t)(value - field));
	}

	uint64_t deadline = dkim_monotonic_msecs() +
		verifier->config.dns_timeout_msecs;
	for (size_t i = 0; i < verifier->sig_count; i++)
		evaluate(verifier, &verifier->sigs[i], deadline);
	verifier->verdict = compute_verdict(verifier);
}

enum dkim_result
dkim_verifier_verdict(const dkim_verifier *verifier)
{
	return verifier->verdict;
}

size_t
dkim_verifier_signature_count(const dkim_verifier *verifier)
{
	return verifier->sig_count;
}

const struct dkim_signature_result *
dkim_verifier_signature(const dkim_verifier *verifier, size_t index)
{
	return index < verifier->sig_count ?
		&verifier->sigs[index].result : NULL;
}

size_t
dkim_verifier_skipped_signatures(const dkim_verifier *verifier)
{
	return verifier->skipped;
}

const char *
dkim_verifier_from_domain(const dkim_verifier *verifier)
{
	return verifier->from_domain;
}

void
dkim_verifier_free(dkim_verifier **verifier_p)
{
	dkim_verifier *verifier = *verifier_p;

	if (verifier == NULL)
		return;
	for (size_t i = 0; i < verifier->sig_count; i++) {
		dkim_signature_clear(&verifier->sigs[i].sig);
		dkim_dns_query_release(&verifier->sigs[i].query);
		free(verifier->sigs[i].qname);
		free(verifier->sigs[i].explanation);
	}
	for (size_t i = 0; i < DKIM_N_ELEMENTS(verifier->body_canons); i++)
		dkim_body_canon_free(&verifier->body_canons[i]);
	dkim_headers_free(&verifier->headers);
	free(verifier->sigs);
	free(verifier->from_domain);
	free(verifier);
	*verifier_p = NULL;
}

/* Verification (RFC 6376 §6) of every signature of one message, streamed.
 *
 * While the header block streams in, each DKIM-Signature field is parsed
 * as soon as it is complete and its key query starts at once, so DNS runs
 * while the body is hashed.  At the end, each signature is judged in the
 * RFC's order: the signature itself, the key, the body hash, the header
 * hash; then local policy: unsigned body after l=.  A message with
 * several From fields gets "policy" for each usable signature before any
 * cryptographic check, since which From a signature covers does not make
 * the author any less ambiguous.
 * The ARC chain (arc-verify.c) is validated in the same pass. */
#include "dkim-private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DKIM_DEFAULT_MAX_SIGNATURES 5
#define DKIM_DEFAULT_DNS_TIMEOUT_MSECS 5000
#define DKIM_DEFAULT_CLOCK_DRIFT 300

struct verify_sig {
	struct dkim_signature sig;
	char *qname;
	struct dkim_dns_query *query;		/* NULL when not looked up */
	const struct dkim_body_canon *body_canon; /* NULL when not hashed */
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
	time_t now;		/* the verification time, set at the end */

	struct dkim_body_canons body_canons;

	struct verify_sig *sigs;
	size_t sig_count;
	size_t skipped;

	struct dkim_arc_chain arc;

	size_t from_count;
	enum dkim_author_status author_status;
	char *from_domain;	/* the author domain */
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
	config->arc = true;
}

dkim_verifier *
dkim_verifier_new(const struct dkim_verify_config *config,
		  dkim_resolver *resolver)
{
	dkim_verifier *verifier = dkim_calloc(1, sizeof(*verifier));

	verifier->config = *config;
	if (verifier->config.max_signatures == 0)
		verifier->config.max_signatures = 1;
	if (verifier->config.max_signatures > DKIM_MAX_SIGNATURES_LIMIT)
		verifier->config.max_signatures = DKIM_MAX_SIGNATURES_LIMIT;
	if (verifier->config.min_rsa_bits < DKIM_RSA_MIN_BITS)
		verifier->config.min_rsa_bits = DKIM_RSA_MIN_BITS;
	verifier->resolver = resolver;
	dkim_headers_init(&verifier->headers, config->max_header_bytes);
	verifier->sigs = dkim_calloc(verifier->config.max_signatures,
				     sizeof(*verifier->sigs));
	dkim_body_canons_init(&verifier->body_canons);
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
	vs->qname = dkim_signature_qname(sig);
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
		vs->body_canon = &verifier->body_canons.by_canon[sig->body_canon];
		vs->body_hash = dkim_body_canons_hash(&verifier->body_canons,
			sig->body_canon,
			sig->has_length ? sig->length : UINT64_MAX);
	}
	if (verifier->config.arc)
		dkim_arc_chain_start(&verifier->arc, &verifier->headers,
				     verifier->resolver,
				     &verifier->body_canons);
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
	dkim_body_canons_feed(&verifier->body_canons, data, size);
}

/* ---- judging one signature ---- */

/* A failed shared check (sigcheck.c) becomes the signature's result. */
static void
judge_check(struct verify_sig *vs, const struct dkim_check *check)
{
	judge(vs, check->reason, "%s", check->text);
}

static dkim_pubkey *
fetch_key(dkim_verifier *verifier, struct verify_sig *vs,
	  uint64_t deadline_msecs)
{
	struct dkim_check check = { .reason = DKIM_REASON_NONE };
	dkim_pubkey *key = dkim_check_key(&check, verifier->resolver,
					  vs->query, vs->qname, &vs->sig,
					  verifier->config.min_rsa_bits,
					  deadline_msecs);

	vs->result.dnssec = check.dnssec;
	vs->result.key_type = check.key_type;
	vs->result.key_bits = check.key_bits;
	vs->result.key_testing = check.key_testing;
	if (key == NULL)
		judge_check(vs, &check);
	return key;
}

static void
check_signature(dkim_verifier *verifier, struct verify_sig *vs,
		const dkim_pubkey *key)
{
	const struct dkim_signature *sig = &vs->sig;
	struct dkim_check check = { .reason = DKIM_REASON_NONE };
	unsigned char digest[DKIM_SHA256_LEN];

	if (!dkim_check_body(&check, sig, vs->body_canon, vs->body_hash)) {
		judge_check(vs, &check);
		return;
	}
	dkim_hash_signed_headers(&verifier->headers, sig->header_canon,
				 sig->signed_headers, sig->signed_header_count,
				 sig->field, sig->field_len, sig->b_value_start,
				 sig->b_value_end, digest);
	if (!dkim_check_digest(&check, sig, key, digest)) {
		judge_check(vs, &check);
		return;
	}

	if (sig->has_length &&
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

	if (verifier->headers.overflow != DKIM_REASON_NONE) {
		judge(vs, verifier->headers.overflow, "%s: the message cannot "
		      "be verified", verifier->headers.overflow_text);
		return;
	}
	if (sig->error != DKIM_REASON_NONE) {
		judge(vs, sig->error, "%s", sig->error_text);
		return;
	}
	if (verifier->from_count > 1) {
		judge(vs, DKIM_REASON_MULTIPLE_FROM,
		      "the message has %zu From fields: its author is "
		      "ambiguous, whichever one the signature covers",
		      verifier->from_count);
		return;
	}
	struct dkim_check check = { .reason = DKIM_REASON_NONE };
	if (!dkim_check_times(&check, sig, verifier->now,
			      verifier->config.clock_drift)) {
		judge_check(vs, &check);
		return;
	}

	dkim_pubkey *key = fetch_key(verifier, vs, deadline_msecs);
	if (key == NULL)
		return;
	check_signature(verifier, vs, key);
	dkim_pubkey_free(&key);
}

static enum dkim_result
compute_verdict(const dkim_verifier *verifier)
{
	enum dkim_result verdict = DKIM_RESULT_NONE;

	for (size_t i = 0; i < verifier->sig_count; i++)
		verdict = dkim_verdict_add(verdict,
					   verifier->sigs[i].result.result);
	return verdict;
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
	dkim_body_canons_finish(&verifier->body_canons);
	verifier->finished = true;

	/* Too large to keep: judged (in evaluate()) as one unusable
	 * signature, since what the dropped part held is unknown. */
	if (verifier->headers.overflow != DKIM_REASON_NONE &&
	    verifier->sig_count == 0)
		verifier->sig_count = 1;

	verifier->from_count =
		dkim_headers_count_name(&verifier->headers, "From", 4);
	verifier->author_status = dkim_headers_author(&verifier->headers,
						      &verifier->from_domain);

	verifier->now = verifier->config.now != 0 ? verifier->config.now :
		time(NULL);
	uint64_t deadline = dkim_monotonic_msecs() +
		verifier->config.dns_timeout_msecs;
	for (size_t i = 0; i < verifier->sig_count; i++)
		evaluate(verifier, &verifier->sigs[i], deadline);
	verifier->verdict = compute_verdict(verifier);

	struct dkim_arc_context arc_context = {
		.headers = &verifier->headers,
		.resolver = verifier->resolver,
		.config = &verifier->config,
		.now = verifier->now,
		.deadline_msecs = deadline,
	};
	dkim_arc_chain_finish(&verifier->arc, &arc_context);
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

enum dkim_author_status
dkim_verifier_author_status(const dkim_verifier *verifier)
{
	return verifier->author_status;
}

void
dkim_verifier_dispute_author(dkim_verifier *verifier)
{
	if (verifier->author_status != DKIM_AUTHOR_FOUND)
		return;
	verifier->author_status = DKIM_AUTHOR_DISPUTED;
	free(verifier->from_domain);
	verifier->from_domain = NULL;
}

enum dkim_result
dkim_verifier_arc(const dkim_verifier *verifier,
		  const struct dkim_arc_result **result_r)
{
	if (result_r != NULL)
		*result_r = &verifier->arc.result;
	return verifier->arc.result.cv;
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
	dkim_arc_chain_free(&verifier->arc);
	dkim_body_canons_free(&verifier->body_canons);
	dkim_headers_free(&verifier->headers);
	free(verifier->sigs);
	free(verifier->from_domain);
	free(verifier);
	*verifier_p = NULL;
}

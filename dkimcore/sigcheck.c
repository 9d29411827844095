/* Judging one signature field against the clock, its key and the hashes
 * of the message: the steps DKIM-Signature (RFC 6376 §6.1), and
 * ARC-Message-Signature and ARC-Seal (RFC 8617 §5.2) verification share.
 * Each step stops at the first problem and explains it. */
#include "dkim-private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
dkim_check_fail(struct dkim_check *check, enum dkim_reason reason,
		const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(check->text, sizeof(check->text), fmt, args);
	va_end(args);
	check->reason = reason;
}

char *
dkim_signature_qname(const struct dkim_signature *sig)
{
	return dkim_strdup_printf("%s._domainkey.%.*s", sig->selector,
				  (int)sig->domain_len, sig->domain_raw);
}

bool
dkim_check_times(struct dkim_check *check, const struct dkim_signature *sig,
		 time_t now, unsigned clock_drift)
{
	time_t drift = (time_t)clock_drift;
	char when[64];

	if (sig->expiration != 0 && now > sig->expiration + drift) {
		dkim_format_time(sig->expiration, when, sizeof(when));
		dkim_check_fail(check, DKIM_REASON_EXPIRED,
				"signature expired at %s", when);
		return false;
	}
	if (sig->timestamp != 0 && sig->timestamp > now + drift) {
		dkim_format_time(sig->timestamp, when, sizeof(when));
		dkim_check_fail(check, DKIM_REASON_FUTURE,
				"signature timestamp %s is in the future", when);
		return false;
	}
	return true;
}

/* The answer must hold exactly one usable record. */
static const struct dkim_buf *
key_record(struct dkim_check *check, const struct dkim_dns_query *query,
	   const char *qname)
{
	const struct dkim_dns_answer *answer = &query->answer;

	check->dnssec = answer->dnssec;
	if (answer->dnssec == DKIM_DNSSEC_BOGUS) {
		dkim_check_fail(check, DKIM_REASON_DNSSEC_BOGUS,
			"DNSSEC validation of the key at %s failed (bogus)",
			qname);
		return NULL;
	}
	switch (answer->status) {
	case DKIM_DNS_FOUND:
		break;
	case DKIM_DNS_NOT_FOUND:
		dkim_check_fail(check, DKIM_REASON_KEY_NOT_FOUND,
				"no key at %s%s%s%s", qname,
				answer->detail != NULL ? " (" : "",
				answer->detail != NULL ? answer->detail : "",
				answer->detail != NULL ? ")" : "");
		return NULL;
	case DKIM_DNS_TIMEOUT:
		dkim_check_fail(check, DKIM_REASON_DNS_TIMEOUT,
				"DNS timeout looking up the key at %s", qname);
		return NULL;
	case DKIM_DNS_ERROR:
		dkim_check_fail(check, DKIM_REASON_DNS_ERROR,
				"DNS error looking up %s: %s", qname,
				answer->detail != NULL ? answer->detail :
				"server failure");
		return NULL;
	}
	if (answer->record_count != 1) {
		dkim_check_fail(check, DKIM_REASON_KEY_MULTIPLE,
			"%zu TXT records at %s where one key record belongs",
			answer->record_count, qname);
		return NULL;
	}
	return &answer->records[0];
}

dkim_pubkey *
dkim_check_key(struct dkim_check *check, dkim_resolver *resolver,
	       struct dkim_dns_query *query, const char *qname,
	       const struct dkim_signature *sig, unsigned min_rsa_bits,
	       uint64_t deadline_msecs)
{
	struct dkim_key_record record;
	struct dkim_error error;
	dkim_pubkey *key;

	if (!dkim_resolver_wait(resolver, query, deadline_msecs)) {
		dkim_check_fail(check, DKIM_REASON_DNS_TIMEOUT,
				"DNS timeout looking up the key at %s", qname);
		return NULL;
	}
	const struct dkim_buf *txt = key_record(check, query, qname);
	if (txt == NULL)
		return NULL;

	enum dkim_reason reason = dkim_key_record_parse(txt->data, txt->len,
							&record, &key, &error);
	check->key_type = record.type;
	check->key_bits = record.bits;
	check->key_testing = record.testing;
	if (reason != DKIM_REASON_NONE) {
		dkim_check_fail(check, reason, "%s (key at %s)", error.text,
				qname);
		return NULL;
	}
	if (record.revoked) {
		dkim_check_fail(check, DKIM_REASON_KEY_REVOKED,
				"key revoked (empty p= at %s)", qname);
	} else if (record.type != sig->key_type) {
		dkim_check_fail(check, DKIM_REASON_KEY_TYPE_MISMATCH,
			"key at %s is k=%s but the signature is a=%s", qname,
			dkim_key_type_name(record.type), sig->algorithm);
	} else if (!record.allows_sha256) {
		dkim_check_fail(check, DKIM_REASON_KEY_HASH_MISMATCH,
			"key at %s does not allow sha256 (h= tag)", qname);
	} else if (!record.email_service) {
		dkim_check_fail(check, DKIM_REASON_KEY_SERVICE,
			"key at %s is not for email (s= tag)", qname);
	} else if (record.strict_identity && sig->identity_domain != NULL &&
		   !dkim_mem_equal_icase(sig->identity_domain,
					 strlen(sig->identity_domain),
					 sig->domain_raw, sig->domain_len)) {
		dkim_check_fail(check, DKIM_REASON_KEY_STRICT_IDENTITY,
			"key at %s has t=s, which forbids identity i=%s "
			"in a subdomain of d=%s", qname, sig->identity,
			sig->domain);
	} else if (record.type == DKIM_KEY_RSA && record.bits < min_rsa_bits) {
		dkim_check_fail(check, DKIM_REASON_KEY_TOO_SMALL,
			"RSA key too small (%u bits, %u required)",
			record.bits, min_rsa_bits);
	} else {
		return key;
	}
	dkim_pubkey_free(&key);
	return NULL;
}

bool
dkim_check_body(struct dkim_check *check, const struct dkim_signature *sig,
		const struct dkim_body_canon *body,
		const struct dkim_body_hash *body_hash)
{
	if (sig->has_length && sig->length > body->length) {
		dkim_check_fail(check, DKIM_REASON_BAD_BODY_LENGTH,
			"l=%llu is longer than the body (%llu bytes): "
			"body cut after signing?",
			(unsigned long long)sig->length,
			(unsigned long long)body->length);
		return false;
	}
	if (memcmp(body_hash->digest, sig->bh, DKIM_SHA256_LEN) != 0) {
		dkim_check_fail(check, DKIM_REASON_BODY_HASH_MISMATCH,
			"body hash mismatch: body changed after signing "
			"(footer added by a list?)");
		return false;
	}
	return true;
}

bool
dkim_check_digest(struct dkim_check *check, const struct dkim_signature *sig,
		  const dkim_pubkey *key,
		  const unsigned char digest[DKIM_SHA256_LEN])
{
	switch (dkim_pubkey_verify(key, digest, sig->b, sig->b_len)) {
	case DKIM_VERIFY_OK:
		return true;
	case DKIM_VERIFY_BAD_SIGNATURE:
		dkim_check_fail(check, DKIM_REASON_SIGNATURE_MISMATCH,
			"signature mismatch: a signed header changed");
		return false;
	case DKIM_VERIFY_BAD_LENGTH:
		dkim_check_fail(check, DKIM_REASON_SIGNATURE_MISMATCH,
			"signature mismatch: b= holds %zu bytes, wrong for a "
			"%u-bit %s key", sig->b_len, key->bits,
			dkim_key_type_name(key->type));
		return false;
	case DKIM_VERIFY_INTERNAL:
		break;
	}
	dkim_check_fail(check, DKIM_REASON_INTERNAL,
			"internal error: the crypto library failed");
	return false;
}

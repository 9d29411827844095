/* Names of results, reasons and states, and which result each reason
 * gives. */
#include "dkim-private.h"

#include <strings.h>

static const char *const result_names[] = {
	[DKIM_RESULT_NONE] = "none",
	[DKIM_RESULT_PASS] = "pass",
	[DKIM_RESULT_FAIL] = "fail",
	[DKIM_RESULT_POLICY] = "policy",
	[DKIM_RESULT_NEUTRAL] = "neutral",
	[DKIM_RESULT_TEMPERROR] = "temperror",
	[DKIM_RESULT_PERMERROR] = "permerror",
};

const char *
dkim_result_name(enum dkim_result result)
{
	if ((size_t)result >= DKIM_N_ELEMENTS(result_names))
		return "unknown";
	return result_names[result];
}

bool
dkim_result_parse(const char *name, enum dkim_result *result_r)
{
	for (size_t i = 0; i < DKIM_N_ELEMENTS(result_names); i++) {
		if (strcasecmp(name, result_names[i]) == 0) {
			*result_r = (enum dkim_result)i;
			return true;
		}
	}
	return false;
}

/* The order of dkim_verifier_verdict() (dkim.h): higher decides. */
static const unsigned verdict_rank[] = {
	[DKIM_RESULT_NONE] = 0,
	[DKIM_RESULT_NEUTRAL] = 1,
	[DKIM_RESULT_PERMERROR] = 2,
	[DKIM_RESULT_POLICY] = 3,
	[DKIM_RESULT_FAIL] = 4,
	[DKIM_RESULT_TEMPERROR] = 5,
	[DKIM_RESULT_PASS] = 6,
};

enum dkim_result
dkim_verdict_add(enum dkim_result verdict, enum dkim_result result)
{
	if ((size_t)result >= DKIM_N_ELEMENTS(verdict_rank))
		return verdict;
	if ((size_t)verdict >= DKIM_N_ELEMENTS(verdict_rank))
		return result;
	return verdict_rank[result] > verdict_rank[verdict] ? result : verdict;
}

static const struct {
	const char *name;
	enum dkim_result result;
} reasons[] = {
	[DKIM_REASON_NONE] = { "none", DKIM_RESULT_PASS },
	[DKIM_REASON_SIG_SYNTAX] = { "signature-syntax", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_SIG_DUPLICATE_TAG] = { "duplicate-tag", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_SIG_MISSING_TAG] = { "missing-tag", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_SIG_VERSION] = { "signature-version", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_ALGORITHM_SHA1] = { "rsa-sha1", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_ALGORITHM_UNKNOWN] = { "unknown-algorithm", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_CANON_UNKNOWN] = { "unknown-canonicalization", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_QUERY_METHOD] = { "query-method", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_FROM_NOT_SIGNED] = { "from-not-signed", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_IDENTITY_MISMATCH] = { "identity-mismatch", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_BAD_BODY_LENGTH] = { "body-length", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_EXPIRED] = { "expired", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_FUTURE] = { "future-timestamp", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_EXPIRY_BEFORE_TIMESTAMP] = { "expiry-before-timestamp", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_HEADER_TOO_LARGE] = { "header-too-large", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_SIG_TOO_MANY_HEADERS] = { "too-many-signed-headers", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_HEADER_TOO_MANY_NAMES] = { "too-many-field-names", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_KEY_NOT_FOUND] = { "no-key", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_KEY_MULTIPLE] = { "multiple-keys", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_KEY_SYNTAX] = { "key-syntax", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_KEY_REVOKED] = { "key-revoked", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_KEY_VERSION] = { "key-version", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_KEY_TYPE_MISMATCH] = { "key-type-mismatch", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_KEY_TYPE_UNKNOWN] = { "key-type-unknown", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_KEY_HASH_MISMATCH] = { "key-hash-mismatch", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_KEY_SERVICE] = { "key-service", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_KEY_STRICT_IDENTITY] = { "key-strict-identity", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_KEY_TOO_SMALL] = { "key-too-small", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_KEY_TOO_LARGE] = { "key-too-large", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_KEY_DATA] = { "key-data", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_DNSSEC_BOGUS] = { "dnssec-bogus", DKIM_RESULT_PERMERROR },
	[DKIM_REASON_DNS_TIMEOUT] = { "dns-timeout", DKIM_RESULT_TEMPERROR },
	[DKIM_REASON_DNS_ERROR] = { "dns-error", DKIM_RESULT_TEMPERROR },
	[DKIM_REASON_BODY_HASH_MISMATCH] = { "body-hash-mismatch", DKIM_RESULT_FAIL },
	[DKIM_REASON_SIGNATURE_MISMATCH] = { "signature-mismatch", DKIM_RESULT_FAIL },
	[DKIM_REASON_MULTIPLE_FROM] = { "multiple-from", DKIM_RESULT_POLICY },
	[DKIM_REASON_PARTIAL_BODY] = { "partial-body", DKIM_RESULT_POLICY },
	[DKIM_REASON_INTERNAL] = { "internal-error", DKIM_RESULT_TEMPERROR },
	[DKIM_REASON_ARC_STRUCTURE] = { "arc-structure", DKIM_RESULT_FAIL },
	[DKIM_REASON_ARC_CHAIN_FAILED] = { "arc-chain-failed", DKIM_RESULT_FAIL },
};

const char *
dkim_reason_name(enum dkim_reason reason)
{
	if ((size_t)reason >= DKIM_N_ELEMENTS(reasons) ||
	    reasons[reason].name == NULL)
		return "unknown";
	return reasons[reason].name;
}

enum dkim_result
dkim_reason_result(enum dkim_reason reason)
{
	if ((size_t)reason >= DKIM_N_ELEMENTS(reasons) ||
	    reasons[reason].name == NULL)
		return DKIM_RESULT_PERMERROR;
	return reasons[reason].result;
}

const char *
dkim_dnssec_name(enum dkim_dnssec dnssec)
{
	switch (dnssec) {
	case DKIM_DNSSEC_OFF:
		return "unvalidated";
	case DKIM_DNSSEC_INSECURE:
		return "insecure";
	case DKIM_DNSSEC_SECURE:
		return "secure";
	case DKIM_DNSSEC_BOGUS:
		return "bogus";
	}
	return "unknown";
}

const char *
dkim_key_type_name(enum dkim_key_type type)
{
	switch (type) {
	case DKIM_KEY_RSA:
		return "rsa";
	case DKIM_KEY_ED25519:
		return "ed25519";
	case DKIM_KEY_NONE:
		break;
	}
	return "none";
}

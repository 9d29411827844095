/* ARC chain validation (RFC 8617 §5.2), in the pass that verifies DKIM.
 *
 * When the header block is complete, the ARC header fields are sorted
 * into sets by instance and the chain's structure is checked (steps 1-3).
 * Only a sound chain costs DNS queries and hashing, and then newest set
 * first, stopping at the first failure, as Stalwart and rspamd do: the
 * newest ARC-Message-Signature decides whether the chain can pass, then
 * every seal must verify, newest first, then the older AMSs give the
 * oldest-pass instance.  The key queries of the newest AMS and seal
 * start with the body and overlap its hashing; an older seal's key is
 * looked up only once every newer seal has verified, an older AMS's only
 * on a chain that passed while the newer AMSs verify.  So whatever the
 * sets name, the sender can make us look up at most two keys (the newest
 * set's) without first signing with every newer key, and a fake chain
 * costs those two lookups and one body hash.
 *
 * The body streams past once, so its hashes are asked for up front: for
 * the newest AMS, and for oldest-pass for the next older ones, at most
 * DKIM_ARC_MAX_AMS_CHECKS in all (one hash per canonicalization and l=,
 * shared with DKIM's).  An AMS beyond that cap is not checked, so with
 * more sets oldest-pass is at best the oldest instance checked.  The
 * seals cost no body hashing; they are checked up to RFC 8617's cap of
 * DKIM_ARC_MAX_SETS, within the DNS deadline. */
#include "dkim-private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Three fields per set; more cannot form a valid chain. */
#define MAX_ARC_FIELDS (3 * DKIM_ARC_MAX_SETS)

static const char aar_name[] = "ARC-Authentication-Results";
static const char ams_name[] = "ARC-Message-Signature";
static const char as_name[] = "ARC-Seal";

/* The first problem found is the one reported. */
static void DKIM_ATTR_FORMAT(4, 5)
chain_fail(struct dkim_arc_chain *chain, enum dkim_reason reason,
	   unsigned instance, const char *fmt, ...)
{
	char text[600];
	va_list args;

	if (chain->decided)
		return;
	va_start(args, fmt);
	vsnprintf(text, sizeof(text), fmt, args);
	va_end(args);
	chain->result.cv = DKIM_RESULT_FAIL;
	chain->result.reason = reason;
	chain->result.failed_instance = instance;
	free(chain->explanation);
	/* The texts quote d=, s= and the like from the message; sanitized
	 * here once for all. */
	chain->explanation = dkim_sanitize(text, strlen(text));
	chain->result.explanation = chain->explanation;
	chain->decided = true;
}

/* ---- sorting the fields into sets ---- */

static void
set_init(struct dkim_arc_set *set)
{
	memset(set, 0, sizeof(*set));
	set->aar = set->ams.index = set->as.index = -1;
}

static const char *
skip_fws(const char *p, const char *end)
{
	while (p < end && (dkim_is_wsp((unsigned char)*p) || *p == '\r' ||
			   *p == '\n'))
		p++;
	return p;
}

/* The instance of an ARC-Authentication-Results field: its value must
 * start with "i=N;" (RFC 8617 §4.1.1); 0 if it does not. */
static unsigned
aar_instance(const char *field, size_t len)
{
	const char *p = memchr(field, ':', len), *end = field + len;
	unsigned value = 0;
	size_t digits = 0;

	if (p == NULL)
		return 0;
	p = skip_fws(p + 1, end);
	if (p == end || *p != 'i')
		return 0;
	p = skip_fws(p + 1, end);
	if (p == end || *p != '=')
		return 0;
	/* At most three digits: enough for 50, and no overflow. */
	for (p = skip_fws(p + 1, end); p < end && *p >= '0' && *p <= '9' &&
	     digits < 3; p++, digits++)
		value = value * 10 + (unsigned)(*p - '0');
	if (digits == 0 || value > DKIM_ARC_MAX_SETS)
		return 0;
	p = skip_fws(p, end);
	return p < end && *p == ';' ? value : 0;
}

/* The set of an instance (1 to DKIM_ARC_MAX_SETS), growing the chain to
 * it: most chains have a few sets. */
static struct dkim_arc_set *
set_for(struct dkim_arc_chain *chain, unsigned instance)
{
	if (instance > chain->count) {
		chain->sets = dkim_realloc(chain->sets,
					   instance * sizeof(*chain->sets));
		for (unsigned i = chain->count; i < instance; i++)
			set_init(&chain->sets[i]);
		chain->count = instance;
	}
	return &chain->sets[instance - 1];
}

static void
add_aar(struct dkim_arc_chain *chain, const struct dkim_headers *headers,
	size_t index)
{
	unsigned instance = aar_instance(dkim_headers_field(headers, index),
					 headers->fields[index].len);

	if (instance == 0) {
		chain_fail(chain, DKIM_REASON_ARC_STRUCTURE, 0,
			   "%s does not start with an instance i=1 to i=%u "
			   "and a semicolon", aar_name, DKIM_ARC_MAX_SETS);
		return;
	}
	struct dkim_arc_set *set = set_for(chain, instance);
	if (set->aar >= 0) {
		chain_fail(chain, DKIM_REASON_ARC_STRUCTURE, instance,
			   "two %s fields with i=%u", aar_name, instance);
		return;
	}
	set->aar = (ssize_t)index;
}

static void
add_signature(struct dkim_arc_chain *chain,
	      const struct dkim_headers *headers, size_t index,
	      enum dkim_signature_kind kind)
{
	const char *name = kind == DKIM_SIG_ARC_SEAL ? as_name : ams_name;
	struct dkim_signature sig;

	dkim_signature_parse_kind(&sig, kind, dkim_headers_field(headers, index),
				  headers->fields[index].len);
	if (sig.instance == 0) {
		chain_fail(chain, DKIM_REASON_ARC_STRUCTURE, 0,
			   "%s without a usable instance: %s", name,
			   sig.error_text != NULL ? sig.error_text :
			   "no i= tag");
		dkim_signature_clear(&sig);
		return;
	}
	struct dkim_arc_set *set = set_for(chain, sig.instance);
	struct dkim_arc_member *member = kind == DKIM_SIG_ARC_SEAL ?
		&set->as : &set->ams;
	if (member->index >= 0) {
		chain_fail(chain, DKIM_REASON_ARC_STRUCTURE, sig.instance,
			   "two %s fields with i=%u", name, sig.instance);
		dkim_signature_clear(&sig);
		return;
	}
	member->index = (ssize_t)index;
	member->sig = sig;
}

/* RFC 8617 §5.2 step 1: gathers the sets.  It goes on after a problem,
 * so that the highest instance is known to a sealer, which must go
 * above it. */
static void
collect_sets(struct dkim_arc_chain *chain, const struct dkim_headers *headers)
{
	size_t fields = 0;

	for (size_t i = 0; i < headers->count; i++) {
		bool aar = dkim_headers_name_is(headers, i, aar_name);
		bool ams = !aar && dkim_headers_name_is(headers, i, ams_name);
		bool as = !aar && !ams && dkim_headers_name_is(headers, i,
							       as_name);

		if (!aar && !ams && !as)
			continue;
		if (++fields > MAX_ARC_FIELDS) {
			chain_fail(chain, DKIM_REASON_ARC_STRUCTURE, 0,
				   "more than %u ARC header fields (at most "
				   "%u sets)", MAX_ARC_FIELDS,
				   DKIM_ARC_MAX_SETS);
			return;
		}
		if (aar)
			add_aar(chain, headers, i);
		else
			add_signature(chain, headers, i, ams ?
				      DKIM_SIG_ARC_MESSAGE : DKIM_SIG_ARC_SEAL);
	}
}

/* Step 2: the newest seal reports a broken chain. */
static bool
newest_seal_failed(const struct dkim_arc_chain *chain)
{
	const struct dkim_arc_member *newest = &chain->sets[chain->count - 1].as;

	return newest->index >= 0 && newest->sig.error == DKIM_REASON_NONE &&
		newest->sig.chain_status == DKIM_RESULT_FAIL;
}

/* Step 3: every set complete, 1..N without gaps, and each seal's cv=
 * fitting its place. */
static bool
check_structure(struct dkim_arc_chain *chain)
{
	unsigned n = chain->count;

	for (unsigned i = 1; i <= n; i++) {
		const struct dkim_arc_set *set = &chain->sets[i - 1];
		const char *missing = set->aar < 0 ? aar_name :
			set->ams.index < 0 ? ams_name :
			set->as.index < 0 ? as_name : NULL;

		if (missing != NULL) {
			chain_fail(chain, DKIM_REASON_ARC_STRUCTURE, i,
				   "ARC set i=%u of %u has no %s", i, n,
				   missing);
			return false;
		}
		if (set->as.sig.error != DKIM_REASON_NONE) {
			chain_fail(chain, set->as.sig.error, i, "%s i=%u: %s",
				   as_name, i, set->as.sig.error_text);
			return false;
		}
		enum dkim_result expected = i == 1 ? DKIM_RESULT_NONE :
			DKIM_RESULT_PASS;
		if (set->as.sig.chain_status != expected) {
			chain_fail(chain, DKIM_REASON_ARC_STRUCTURE, i,
				   "%s i=%u reports cv=%s where cv=%s belongs",
				   as_name, i,
				   dkim_result_name(set->as.sig.chain_status),
				   dkim_result_name(expected));
			return false;
		}
	}
	chain->sound = true;
	return true;
}

/* Starts the key query of a usable member, once. */
static void
start_query(struct dkim_arc_member *member, dkim_resolver *resolver)
{
	if (member->query != NULL || member->sig.error != DKIM_REASON_NONE)
		return;
	member->qname = dkim_signature_qname(&member->sig);
	member->query = dkim_resolver_start(resolver, member->qname);
}

bool
dkim_arc_chain_collect(struct dkim_arc_chain *chain,
		       const struct dkim_headers *headers)
{
	collect_sets(chain, headers);
	chain->result.sets = chain->count;
	if (chain->count > 0 && newest_seal_failed(chain)) {
		/* This reason wins over any other problem found: a chain that
		 * a sealer declared broken stays broken, and must not be
		 * extended (RFC 8617 §5.1). */
		chain->decided = false;
		chain_fail(chain, DKIM_REASON_ARC_CHAIN_FAILED, chain->count,
			   "the newest %s (i=%u) reports cv=fail: the chain "
			   "was already broken", as_name, chain->count);
		return false;
	}
	if (chain->decided)
		return false;
	if (chain->count == 0) {
		chain->decided = true; /* no ARC: cv=none */
		return true;
	}
	if (headers->overflow != DKIM_REASON_NONE) {
		/* ARC fields may be among those dropped. */
		chain_fail(chain, headers->overflow, 0, "%s: the ARC chain "
			   "cannot be validated", headers->overflow_text);
		return false;
	}
	return check_structure(chain);
}

void
dkim_arc_chain_start_checks(struct dkim_arc_chain *chain,
			    dkim_resolver *resolver,
			    struct dkim_body_canons *bcs)
{
	unsigned n = chain->count;
	struct dkim_arc_set *newest = &chain->sets[n - 1];

	chain->result.seal_domain = newest->as.sig.domain;
	start_query(&newest->ams, resolver);
	start_query(&newest->as, resolver);
	/* oldest-pass stops at the first AMS that does not validate: none
	 * older than an unusable one needs its body hashed. */
	for (unsigned i = n; i >= 1 && n - i < DKIM_ARC_MAX_AMS_CHECKS; i--) {
		struct dkim_arc_set *set = &chain->sets[i - 1];
		const struct dkim_signature *ams = &set->ams.sig;

		if (ams->error != DKIM_REASON_NONE)
			break;
		set->body_canon = &bcs->by_canon[ams->body_canon];
		set->body_hash = dkim_body_canons_hash(bcs, ams->body_canon,
			ams->has_length ? ams->length : UINT64_MAX);
	}
}

void
dkim_arc_chain_start(struct dkim_arc_chain *chain,
		     const struct dkim_headers *headers,
		     dkim_resolver *resolver, struct dkim_body_canons *bcs)
{
	if (dkim_arc_chain_collect(chain, headers) && !chain->decided)
		dkim_arc_chain_start_checks(chain, resolver, bcs);
}

/* ---- validating the signatures ---- */

bool
dkim_arc_chain_hash_sets(const struct dkim_arc_chain *chain,
			 const struct dkim_headers *headers, unsigned count,
			 struct dkim_header_hash *hash)
{
	if (count > 0 && (!chain->sound || count > chain->count))
		return false;
	for (unsigned i = 0; i < count; i++) {
		const struct dkim_arc_set *set = &chain->sets[i];

		dkim_header_hash_stored(hash, headers, (size_t)set->aar);
		dkim_header_hash_stored(hash, headers, (size_t)set->ams.index);
		dkim_header_hash_stored(hash, headers, (size_t)set->as.index);
	}
	return true;
}

/* What an ARC-Seal signs (RFC 8617 §5.1.1): the sets below it, then its
 * own AAR and AMS, then itself without its b= value.  Only the seals of
 * a sound chain are checked, so every one of those fields is there. */
static void
seal_digest(const struct dkim_arc_chain *chain,
	    const struct dkim_headers *headers, unsigned instance,
	    unsigned char digest[DKIM_SHA256_LEN])
{
	const struct dkim_arc_set *set = &chain->sets[instance - 1];
	const struct dkim_signature *sig = &set->as.sig;
	struct dkim_header_hash hash;

	dkim_header_hash_init(&hash, DKIM_CANON_RELAXED);
	(void)dkim_arc_chain_hash_sets(chain, headers, instance - 1, &hash);
	dkim_header_hash_stored(&hash, headers, (size_t)set->aar);
	dkim_header_hash_stored(&hash, headers, (size_t)set->ams.index);
	dkim_header_hash_finish(&hash, sig->field, sig->field_len,
				sig->b_value_start, sig->b_value_end, digest);
}

/* Verifies one AMS or AS, looking its key up now unless that started
 * with the body; on failure the check says why. */
static bool
verify_member(const struct dkim_arc_chain *chain,
	      const struct dkim_arc_context *context, unsigned instance,
	      struct dkim_arc_member *member, struct dkim_check *check)
{
	const struct dkim_arc_set *set = &chain->sets[instance - 1];
	const struct dkim_signature *sig = &member->sig;
	unsigned char digest[DKIM_SHA256_LEN];

	if (sig->error != DKIM_REASON_NONE) {
		dkim_check_fail(check, sig->error, "%s", sig->error_text);
		return false;
	}
	if (!dkim_check_times(check, sig, context->now,
			      context->config->clock_drift))
		return false;
	start_query(member, context->resolver);
	dkim_pubkey *key = dkim_check_key(check, context->resolver,
					  member->query, member->qname, sig,
					  context->config->min_rsa_bits,
					  context->deadline_msecs);
	if (key == NULL)
		return false;

	bool valid;
	if (sig->kind == DKIM_SIG_ARC_SEAL) {
		seal_digest(chain, context->headers, instance, digest);
		valid = dkim_check_digest(check, sig, key, digest);
	} else {
		valid = dkim_check_body(check, sig, set->body_canon,
					set->body_hash);
		if (valid) {
			dkim_hash_signed_headers(context->headers,
				sig->header_canon, sig->signed_headers,
				sig->signed_header_count, sig->field,
				sig->field_len, sig->b_value_start,
				sig->b_value_end, digest);
			valid = dkim_check_digest(check, sig, key, digest);
		}
	}
	dkim_pubkey_free(&key);
	return valid;
}

void
dkim_arc_chain_finish(struct dkim_arc_chain *chain,
		      const struct dkim_arc_context *context)
{
	struct dkim_check check = { .reason = DKIM_REASON_NONE };
	unsigned n = chain->count;

	if (chain->decided || n == 0)
		return;
	/* Step 4: the newest AMS vouches for the message as it is. */
	if (!verify_member(chain, context, n, &chain->sets[n - 1].ams,
			   &check)) {
		chain_fail(chain, check.reason, n, "%s i=%u: %s", ams_name, n,
			   check.text);
		return;
	}
	/* Step 7, before steps 5 and 6, which cannot make the chain fail:
	 * every seal, newest first, so that no older key is looked up
	 * before the newer seals, which sign the older sets, verified. */
	for (unsigned i = n; i >= 1; i--) {
		check.reason = DKIM_REASON_NONE;
		if (!verify_member(chain, context, i, &chain->sets[i - 1].as,
				   &check)) {
			chain_fail(chain, check.reason, i, "%s i=%u: %s",
				   as_name, i, check.text);
			return;
		}
	}
	/* Steps 5 and 6: how far back the message is unchanged, as far as
	 * the AMSs whose bodies were hashed tell.  0 means every AMS still
	 * validates. */
	for (unsigned i = n - 1; i >= 1; i--) {
		struct dkim_arc_set *set = &chain->sets[i - 1];

		check.reason = DKIM_REASON_NONE;
		if (set->body_hash == NULL ||
		    !verify_member(chain, context, i, &set->ams, &check)) {
			chain->result.oldest_pass = i + 1;
			break;
		}
	}
	chain->result.cv = DKIM_RESULT_PASS;
	chain->decided = true;
}

void
dkim_arc_chain_free(struct dkim_arc_chain *chain)
{
	for (unsigned i = 0; i < chain->count; i++) {
		struct dkim_arc_set *set = &chain->sets[i];

		dkim_signature_clear(&set->ams.sig);
		dkim_signature_clear(&set->as.sig);
		dkim_dns_query_release(&set->ams.query);
		dkim_dns_query_release(&set->as.query);
		free(set->ams.qname);
		free(set->as.qname);
	}
	free(chain->sets);
	free(chain->explanation);
	memset(chain, 0, sizeof(*chain));
}

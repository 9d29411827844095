/* DKIM-Signature fields (RFC 6376 §3.5) and their ARC relatives, the
 * ARC-Message-Signature and ARC-Seal (RFC 8617 §4.1.2, §4.1.3): parsing
 * and every check that needs neither the key, the message nor the
 * clock. */
#include "dkim-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
dkim_signature_fail(struct dkim_signature *sig, enum dkim_reason reason,
		    const char *fmt, ...)
{
	char text[512];
	va_list args;

	if (sig->error != DKIM_REASON_NONE)
		return; /* the first problem found is the one reported */
	va_start(args, fmt);
	vsnprintf(text, sizeof(text), fmt, args);
	va_end(args);
	sig->error = reason;
	sig->error_text = dkim_strdup(text);
}

/* A sanitized copy of a tag value for results and messages. */
static char *
shown_value(const struct dkim_tag *tag)
{
	return tag == NULL ? NULL : dkim_sanitize(tag->value, tag->value_len);
}

static bool
parse_decimal(const char *str, size_t len, uint64_t max, uint64_t *value_r)
{
	uint64_t value = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (str[i] < '0' || str[i] > '9')
			return false;
		unsigned digit = (unsigned)(str[i] - '0');
		if (value > (max - digit) / 10)
			return false;
		value = value * 10 + digit;
	}
	*value_r = value;
	return true;
}

static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* dkim-quoted-printable (RFC 6376 §2.11): "=XX" escapes, FWS ignored. */
static bool
qp_decode(const char *src, size_t len, struct dkim_buf *dest)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c != '=') {
			dkim_buf_append_c(dest, (char)c);
			continue;
		}
		if (i + 2 >= len)
			return false;
		int hi = hex_value((unsigned char)src[i + 1]);
		int lo = hex_value((unsigned char)src[i + 2]);
		if (hi < 0 || lo < 0)
			return false;
		dkim_buf_append_c(dest, (char)(hi * 16 + lo));
		i += 2;
	}
	return true;
}

static bool
is_field_name(const char *name, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 33 || c > 126 || c == ':')
			return false;
	}
	return true;
}

static void
parse_algorithm(struct dkim_signature *sig, const struct dkim_tag *tag)
{
	if (dkim_tag_value_is(tag, "rsa-sha256"))
		sig->key_type = DKIM_KEY_RSA;
	else if (dkim_tag_value_is(tag, "ed25519-sha256"))
		sig->key_type = DKIM_KEY_ED25519;
	else if (dkim_tag_value_is(tag, "rsa-sha1"))
		dkim_signature_fail(sig, DKIM_REASON_ALGORITHM_SHA1,
				    "rsa-sha1 not accepted (RFC 8301)");
	else
		dkim_signature_fail(sig, DKIM_REASON_ALGORITHM_UNKNOWN,
				    "unknown algorithm a=%s", sig->algorithm);
}

static bool
parse_canon_name(const char *name, size_t len, enum dkim_canon *canon_r)
{
	if (len == 6 && memcmp(name, "simple", 6) == 0)
		*canon_r = DKIM_CANON_SIMPLE;
	else if (len == 7 && memcmp(name, "relaxed", 7) == 0)
		*canon_r = DKIM_CANON_RELAXED;
	else
		return false;
	return true;
}

static bool
parse_canon(const char *text, size_t len, enum dkim_canon *header_r,
	    enum dkim_canon *body_r)
{
	const char *slash = memchr(text, '/', len);
	size_t header_len = slash != NULL ? (size_t)(slash - text) : len;

	*body_r = DKIM_CANON_SIMPLE;
	if (!parse_canon_name(text, header_len, header_r))
		return false;
	return slash == NULL ||
		parse_canon_name(slash + 1, len - header_len - 1, body_r);
}

bool
dkim_canon_parse(const char *text, enum dkim_canon *header_r,
		 enum dkim_canon *body_r)
{
	return parse_canon(text, strlen(text), header_r, body_r);
}

static void
parse_query_methods(struct dkim_signature *sig, const struct dkim_tag *tag)
{
	const char *item;
	size_t item_len, pos = 0;

	while (dkim_tag_list_next(tag, &pos, &item, &item_len)) {
		if (dkim_mem_equal_icase(item, item_len, "dns/txt", 7))
			return;
	}
	dkim_signature_fail(sig, DKIM_REASON_QUERY_METHOD,
			    "no supported key query method in q=");
}

/* DKIM's h= must sign From (RFC 6376 §5.4).  An AMS need not, and an
 * empty element selects nothing (the ARC test suite expects both to
 * validate, as dkimpy does); but it must never sign an ARC-Seal, which
 * the sealer of the next hop adds (RFC 8617 §4.1.2).  Either lists at
 * most DKIM_MAX_SIGNED_HEADERS fields. */
static void
parse_signed_headers(struct dkim_signature *sig, const struct dkim_tag *tag)
{
	const char *item;
	size_t item_len, pos = 0, alloc = 16;
	bool from_signed = false, arc = sig->kind != DKIM_SIG_DKIM;

	sig->signed_headers = dkim_malloc(alloc * sizeof(*sig->signed_headers));
	while (dkim_tag_list_next(tag, &pos, &item, &item_len)) {
		if (arc && item_len == 0)
			continue;
		if (arc && dkim_mem_equal_icase(item, item_len, "arc-seal", 8)) {
			dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
				"an ARC-Message-Signature must not sign "
				"ARC-Seal (RFC 8617 section 4.1.2)");
			return;
		}
		if (!is_field_name(item, item_len)) {
			dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
					    "malformed header list h=");
			return;
		}
		if (sig->signed_header_count == DKIM_MAX_SIGNED_HEADERS) {
			dkim_signature_fail(sig,
				DKIM_REASON_SIG_TOO_MANY_HEADERS,
				"h= lists more than %u header fields",
				DKIM_MAX_SIGNED_HEADERS);
			return;
		}
		if (sig->signed_header_count == alloc) {
			alloc *= 2;
			sig->signed_headers = dkim_realloc(sig->signed_headers,
				alloc * sizeof(*sig->signed_headers));
		}
		sig->signed_headers[sig->signed_header_count].name = item;
		sig->signed_headers[sig->signed_header_count].len = item_len;
		sig->signed_header_count++;
		if (dkim_mem_equal_icase(item, item_len, "from", 4))
			from_signed = true;
	}
	if (!from_signed && !arc)
		dkim_signature_fail(sig, DKIM_REASON_FROM_NOT_SIGNED,
				    "From is not among the signed headers (h=)");
}

static void
parse_identity(struct dkim_signature *sig, const struct dkim_tag *tag)
{
	struct dkim_buf decoded = { 0 };

	if (!qp_decode(tag->value, tag->value_len, &decoded)) {
		dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
				    "malformed quoted-printable in i=");
		dkim_buf_free(&decoded);
		return;
	}
	free(sig->identity);
	sig->identity = dkim_sanitize(decoded.data != NULL ? decoded.data : "",
				      decoded.len);

	const char *at = decoded.data == NULL ? NULL :
		memrchr(decoded.data, '@', decoded.len);
	if (at == NULL) {
		dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
				    "i=%s has no '@'", sig->identity);
	} else {
		size_t domain_len = decoded.len - (size_t)(at + 1 - decoded.data);
		sig->identity_domain = dkim_sanitize(at + 1, domain_len);
		if (!dkim_domain_is_within(at + 1, domain_len,
					   sig->domain_raw, sig->domain_len))
			dkim_signature_fail(sig, DKIM_REASON_IDENTITY_MISMATCH,
				"identity i=%s is not within d=%s",
				sig->identity, sig->domain);
	}
	dkim_buf_free(&decoded);
}

/* An ARC-Seal has no x= (RFC 8617 §4.1.3): there it is an unknown tag. */
static void
parse_times(struct dkim_signature *sig, const struct dkim_taglist *tags)
{
	const struct dkim_tag *t = dkim_taglist_find(tags, "t");
	const struct dkim_tag *x = sig->kind == DKIM_SIG_ARC_SEAL ? NULL :
		dkim_taglist_find(tags, "x");
	/* Keep within time_t on every platform we build on. */
	const uint64_t max_time = (uint64_t)INT64_MAX / 2;
	uint64_t value;

	if (t != NULL) {
		if (!parse_decimal(t->value, t->value_len, max_time, &value)) {
			dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
					    "malformed timestamp t=");
			return;
		}
		sig->timestamp = (time_t)value;
	}
	if (x != NULL) {
		if (!parse_decimal(x->value, x->value_len, max_time, &value)) {
			dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
					    "malformed expiration x=");
			return;
		}
		sig->expiration = (time_t)value;
	}
	if (t != NULL && x != NULL && sig->expiration <= sig->timestamp)
		dkim_signature_fail(sig, DKIM_REASON_EXPIRY_BEFORE_TIMESTAMP,
			"expiration x=%lld is not after timestamp t=%lld",
			(long long)sig->expiration, (long long)sig->timestamp);
}

/* bh= is NULL for an ARC-Seal, which signs no body. */
static void
parse_hashes(struct dkim_signature *sig, const struct dkim_tag *bh,
	     const struct dkim_tag *b)
{
	size_t size;

	if (bh != NULL) {
		unsigned char *digest = dkim_base64_decode(bh->value,
							   bh->value_len, &size);

		if (digest == NULL || size != DKIM_SHA256_LEN) {
			dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
				"bh= is not a base64 SHA-256 digest");
		} else {
			memcpy(sig->bh, digest, DKIM_SHA256_LEN);
		}
		free(digest);
	}

	sig->b = dkim_base64_decode(b->value, b->value_len, &sig->b_len);
	if (sig->b == NULL || sig->b_len == 0)
		dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
				    "b= is not valid base64");
}

/* b= without its FWS, for header.b (RFC 6008). */
static char *
b_text(const struct dkim_tag *b)
{
	char *text = dkim_malloc(b->value_len + 1);
	size_t len = 0;

	for (size_t i = 0; i < b->value_len; i++) {
		unsigned char c = (unsigned char)b->value[i];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			text[len++] = (char)c;
	}
	char *shown = dkim_sanitize(text, len);
	free(text);
	return shown;
}

/* ARC's i= is the instance, 1 to DKIM_ARC_MAX_SETS (RFC 8617 §4.2.1);
 * it is read first, so that a field broken in other ways still has its
 * place in the chain. */
static void
parse_instance(struct dkim_signature *sig, const struct dkim_tag *tag)
{
	uint64_t value;

	if (tag == NULL)
		return; /* reported as a missing tag */
	if (!parse_decimal(tag->value, tag->value_len, UINT32_MAX, &value) ||
	    value < 1 || value > DKIM_ARC_MAX_SETS) {
		char *shown = shown_value(tag);
		dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
			"instance i=%s is not a number from 1 to %u", shown,
			DKIM_ARC_MAX_SETS);
		free(shown);
		return;
	}
	sig->instance = (unsigned)value;
}

/* The chain validation status an ARC-Seal reports (RFC 8617 §4.1.3). */
static void
parse_chain_status(struct dkim_signature *sig, const struct dkim_tag *tag)
{
	if (dkim_tag_value_is(tag, "none"))
		sig->chain_status = DKIM_RESULT_NONE;
	else if (dkim_tag_value_is(tag, "pass"))
		sig->chain_status = DKIM_RESULT_PASS;
	else if (dkim_tag_value_is(tag, "fail"))
		sig->chain_status = DKIM_RESULT_FAIL;
	else {
		char *shown = shown_value(tag);
		dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
				    "unknown chain validation status cv=%s",
				    shown);
		free(shown);
	}
}

/* DKIM requires v=1; ARC defines no v= and ignores one (RFC 8617 §4.1.2)
 * but needs the instance. */
static bool
check_version(struct dkim_signature *sig, const struct dkim_taglist *tags)
{
	const struct dkim_tag *v = dkim_taglist_find(tags, "v");

	if (sig->kind != DKIM_SIG_DKIM) {
		parse_instance(sig, dkim_taglist_find(tags, "i"));
		return true;
	}
	if (v == NULL) {
		dkim_signature_fail(sig, DKIM_REASON_SIG_VERSION,
			"v= missing (a pre-RFC 6376 draft signature?)");
		return false;
	}
	if (!dkim_tag_value_is(v, "1")) {
		char *shown = shown_value(v);
		dkim_signature_fail(sig, DKIM_REASON_SIG_VERSION,
				    "unsupported version v=%s", shown);
		free(shown);
		return false;
	}
	return true;
}

static bool
check_required(struct dkim_signature *sig, const struct dkim_taglist *tags)
{
	static const char *const required[][8] = {
		[DKIM_SIG_DKIM] = { "a", "b", "bh", "d", "h", "s", NULL },
		[DKIM_SIG_ARC_MESSAGE] = { "i", "a", "b", "bh", "d", "h", "s",
					   NULL },
		[DKIM_SIG_ARC_SEAL] = { "i", "a", "b", "cv", "d", "s", NULL },
	};

	for (const char *const *name = required[sig->kind]; *name != NULL;
	     name++) {
		if (dkim_taglist_find(tags, *name) == NULL) {
			dkim_signature_fail(sig, DKIM_REASON_SIG_MISSING_TAG,
				"required tag %s= is missing", *name);
			return false;
		}
	}
	return true;
}

static void
check_tags(struct dkim_signature *sig, const struct dkim_taglist *tags)
{
	bool seal = sig->kind == DKIM_SIG_ARC_SEAL;
	const struct dkim_tag *tag;

	if (!check_version(sig, tags) || !check_required(sig, tags))
		return;

	parse_algorithm(sig, dkim_taglist_find(tags, "a"));

	/* An ARC-Seal always uses relaxed header canonicalization
	 * (RFC 8617 §5.1.1); c= means nothing there. */
	tag = seal ? NULL : dkim_taglist_find(tags, "c");
	if (tag != NULL && !parse_canon(tag->value, tag->value_len,
					&sig->header_canon, &sig->body_canon)) {
		char *shown = shown_value(tag);
		dkim_signature_fail(sig, DKIM_REASON_CANON_UNKNOWN,
				    "unknown canonicalization c=%s", shown);
		free(shown);
	}

	if (!seal && (tag = dkim_taglist_find(tags, "q")) != NULL)
		parse_query_methods(sig, tag);

	tag = dkim_taglist_find(tags, "d");
	sig->domain_raw = tag->value;
	sig->domain_len = tag->value_len;
	if (!dkim_domain_is_valid(tag->value, tag->value_len))
		dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
				    "invalid domain d=%s", sig->domain);

	tag = dkim_taglist_find(tags, "s");
	if (!dkim_selector_is_valid(tag->value, tag->value_len))
		dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
				    "invalid selector s=%s", sig->selector);
	/* A key name no DNS can hold is a permanent error here, not a
	 * resolver failure later (that would be a temperror). */
	size_t qname_len = tag->value_len + sizeof("._domainkey.") - 1 +
		sig->domain_len;
	if (qname_len > DKIM_MAX_DOMAIN_NAME)
		dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
				    "key name %s._domainkey.%s is longer than "
				    "DNS allows (%zu octets, at most %u)",
				    sig->selector, sig->domain, qname_len,
				    DKIM_MAX_DOMAIN_NAME);

	if (!seal)
		parse_signed_headers(sig, dkim_taglist_find(tags, "h"));
	else if (dkim_taglist_find(tags, "h") != NULL)
		dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
			"an ARC-Seal must not have h= (RFC 8617 section 4.1.3)");
	else
		parse_chain_status(sig, dkim_taglist_find(tags, "cv"));

	if (sig->kind == DKIM_SIG_DKIM &&
	    (tag = dkim_taglist_find(tags, "i")) != NULL)
		parse_identity(sig, tag);

	if (!seal && (tag = dkim_taglist_find(tags, "l")) != NULL) {
		sig->has_length = true;
		if (!parse_decimal(tag->value, tag->value_len, UINT64_MAX,
				   &sig->length))
			dkim_signature_fail(sig, DKIM_REASON_BAD_BODY_LENGTH,
				"body length l= is malformed or out of range");
	}

	parse_times(sig, tags);
	parse_hashes(sig, seal ? NULL : dkim_taglist_find(tags, "bh"),
		     dkim_taglist_find(tags, "b"));
}

void
dkim_signature_parse(struct dkim_signature *sig, const char *field,
		     size_t len)
{
	dkim_signature_parse_kind(sig, DKIM_SIG_DKIM, field, len);
}

void
dkim_signature_parse_kind(struct dkim_signature *sig,
			  enum dkim_signature_kind kind, const char *field,
			  size_t len)
{
	struct dkim_taglist tags;
	struct dkim_error error;
	/* DKIM's default is simple/simple (RFC 6376 §3.5).  ARC signers
	 * that leave c= out mean relaxed/relaxed: the ARC test suite
	 * (ams_fields_c_na) and dkimpy validate such an AMS that way, and
	 * an ARC-Seal is relaxed by definition. */
	enum dkim_canon default_canon = kind == DKIM_SIG_DKIM ?
		DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;

	memset(sig, 0, sizeof(*sig));
	sig->kind = kind;
	sig->field = dkim_strndup(field, len);
	sig->field_len = len;
	sig->header_canon = default_canon;
	sig->body_canon = default_canon;

	const char *colon = memchr(sig->field, ':', len);
	size_t value_start = colon == NULL ? len : (size_t)(colon - sig->field) + 1;
	size_t value_end = len;
	if (value_end >= value_start + 2 &&
	    memcmp(sig->field + value_end - 2, "\r\n", 2) == 0)
		value_end -= 2;

	const char *value = sig->field + value_start;
	switch (dkim_taglist_parse(value, value_end - value_start, &tags,
				   &error)) {
	case DKIM_TAGLIST_OK:
		break;
	case DKIM_TAGLIST_SYNTAX:
		dkim_signature_fail(sig, DKIM_REASON_SIG_SYNTAX,
				    "malformed signature: %s", error.text);
		return;
	case DKIM_TAGLIST_DUPLICATE:
		dkim_signature_fail(sig, DKIM_REASON_SIG_DUPLICATE_TAG,
				    "%s in signature", error.text);
		return;
	}

	const struct dkim_tag *b = dkim_taglist_find(&tags, "b");
	sig->domain = shown_value(dkim_taglist_find(&tags, "d"));
	sig->selector = shown_value(dkim_taglist_find(&tags, "s"));
	sig->algorithm = shown_value(dkim_taglist_find(&tags, "a"));
	if (b != NULL) {
		sig->b_text = b_text(b);
		sig->b_value_start = value_start + b->raw_value_start;
		sig->b_value_end = value_start + b->raw_value_end;
	}
	check_tags(sig, &tags);
}

void
dkim_signature_clear(struct dkim_signature *sig)
{
	free(sig->field);
	free(sig->error_text);
	free(sig->domain);
	free(sig->selector);
	free(sig->identity);
	free(sig->identity_domain);
	free(sig->algorithm);
	free(sig->b_text);
	free(sig->signed_headers);
	free(sig->b);
	memset(sig, 0, sizeof(*sig));
}

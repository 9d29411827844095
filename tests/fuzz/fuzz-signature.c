/* The DKIM-Signature field parser and what it is built on: the tag-list
 * parser, colon-separated tag value lists and base64.
 *
 * Input: the field value (what follows "DKIM-Signature:"), folded or not.
 * Besides memory errors this checks what the verifier relies on: offsets
 * and parsed values stay inside the field, a usable signature has every
 * value it needs, and every text shown to humans is sanitized. */
#include "dkim-private.h"
#include "fuzz.h"

#define FIELD_NAME "DKIM-Signature:"
/* Explanations are formatted into 512-byte buffers. */
#define MAX_EXPLANATION 511

static bool
within(const char *inner, size_t inner_len, const char *outer,
       size_t outer_len)
{
	return inner >= outer && inner_len <= outer_len &&
		(size_t)(inner - outer) <= outer_len - inner_len;
}

/* Decoding what encoding produced must give the same bytes back. */
static void
check_base64(const struct dkim_tag *tag)
{
	size_t size, again_size;
	unsigned char *decoded = dkim_base64_decode(tag->value, tag->value_len,
						    &size);

	if (decoded == NULL)
		return;
	FUZZ_ASSERT(size <= tag->value_len / 4 * 3 + 2,
		    "%zu base64 characters decoded to %zu bytes",
		    tag->value_len, size);
	struct dkim_buf encoded = { 0 };
	dkim_base64_encode(&encoded, decoded, size);
	unsigned char *again = dkim_base64_decode(
		encoded.data != NULL ? encoded.data : "", encoded.len,
		&again_size);
	FUZZ_ASSERT(again != NULL && again_size == size &&
		    memcmp(again, decoded, size) == 0,
		    "base64 does not survive encode + decode");
	free(again);
	dkim_buf_free(&encoded);
	free(decoded);
}

static void
check_taglist(const char *text, size_t len)
{
	struct dkim_taglist tags;
	struct dkim_error error;

	if (dkim_taglist_parse(text, len, &tags, &error) != DKIM_TAGLIST_OK)
		return;
	for (unsigned i = 0; i < tags.count; i++) {
		const struct dkim_tag *tag = &tags.tags[i];
		const char *item;
		size_t item_len, pos = 0, items = 0;

		FUZZ_ASSERT(within(tag->name, tag->name_len, text, len) &&
			    within(tag->value, tag->value_len, text, len) &&
			    tag->raw_value_start <= tag->raw_value_end &&
			    tag->raw_value_end <= len,
			    "tag %u lies outside the parsed text", i);
		FUZZ_ASSERT(tag->name_len > 0 &&
			    ((tag->name[0] | 0x20) >= 'a' &&
			     (tag->name[0] | 0x20) <= 'z'),
			    "tag name does not start with a letter");
		while (dkim_tag_list_next(tag, &pos, &item, &item_len)) {
			FUZZ_ASSERT(within(item, item_len, tag->value,
					   tag->value_len),
				    "list item outside its tag value");
			FUZZ_ASSERT(++items <= tag->value_len + 1,
				    "list iteration does not end");
		}
		check_base64(tag);
	}
}

static void
check_parsed(const struct dkim_signature *sig)
{
	fuzz_check_shown(sig->domain, DKIM_MAX_SHOWN, "d=");
	fuzz_check_shown(sig->selector, DKIM_MAX_SHOWN, "s=");
	fuzz_check_shown(sig->identity, DKIM_MAX_SHOWN, "i=");
	fuzz_check_shown(sig->identity_domain, DKIM_MAX_SHOWN, "i= domain");
	fuzz_check_shown(sig->algorithm, DKIM_MAX_SHOWN, "a=");
	fuzz_check_shown(sig->b_text, DKIM_MAX_SHOWN, "b=");
	FUZZ_ASSERT(sig->b_value_start <= sig->b_value_end &&
		    sig->b_value_end <= sig->field_len,
		    "b= value [%zu, %zu) outside the %zu-byte field",
		    sig->b_value_start, sig->b_value_end, sig->field_len);

	if (sig->error != DKIM_REASON_NONE) {
		FUZZ_ASSERT(sig->error_text != NULL, "error without text");
		fuzz_check_shown(sig->error_text, MAX_EXPLANATION,
				 "error text");
		return;
	}
	FUZZ_ASSERT(sig->error_text == NULL, "text without error");
	FUZZ_ASSERT(sig->domain != NULL && sig->selector != NULL &&
		    sig->algorithm != NULL && sig->b_text != NULL,
		    "usable signature lacks a d=, s=, a= or b= text");
	FUZZ_ASSERT(sig->key_type == DKIM_KEY_RSA ||
		    sig->key_type == DKIM_KEY_ED25519, "no key type");
	FUZZ_ASSERT(within(sig->domain_raw, sig->domain_len, sig->field,
			   sig->field_len) &&
		    dkim_domain_is_valid(sig->domain_raw, sig->domain_len),
		    "usable signature with a bad d=");
	FUZZ_ASSERT(sig->b != NULL && sig->b_len > 0, "usable without b=");
	FUZZ_ASSERT(sig->signed_header_count > 0, "usable with empty h=");
	bool from = false;
	for (size_t i = 0; i < sig->signed_header_count; i++) {
		const struct dkim_header_name *name = &sig->signed_headers[i];
		FUZZ_ASSERT(name->len > 0 && within(name->name, name->len,
						    sig->field,
						    sig->field_len),
			    "h= entry %zu outside the field", i);
		from |= dkim_mem_equal_icase(name->name, name->len, "from", 4);
	}
	FUZZ_ASSERT(from, "usable signature does not sign From");
	FUZZ_ASSERT(sig->expiration == 0 || sig->timestamp == 0 ||
		    sig->expiration > sig->timestamp, "usable with x= <= t=");
	if (sig->identity_domain != NULL)
		FUZZ_ASSERT(sig->identity != NULL, "i= domain without i=");
}

/* What the verifier hashes: the field with the b= value deleted. */
static void
check_b_removal(const struct dkim_signature *sig)
{
	for (int canon = DKIM_CANON_SIMPLE; canon <= DKIM_CANON_RELAXED;
	     canon++) {
		struct dkim_buf out = { 0 };

		dkim_canon_signature_field((enum dkim_canon)canon, sig->field,
					   sig->field_len, sig->b_value_start,
					   sig->b_value_end, &out);
		FUZZ_ASSERT(out.len <= sig->field_len + 2,
			    "canonical field grew from %zu to %zu bytes",
			    sig->field_len, out.len);
		dkim_buf_free(&out);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t field_len = strlen(FIELD_NAME) + size;
	/* Exactly sized, so that ASan sees any read past the field. */
	char *field = dkim_malloc(field_len);
	struct dkim_signature sig;

	memcpy(field, FIELD_NAME, strlen(FIELD_NAME));
	memcpy(field + strlen(FIELD_NAME), data, size);

	check_taglist((const char *)data, size);
	dkim_signature_parse(&sig, field, field_len);
	check_parsed(&sig);
	check_b_removal(&sig);
	dkim_signature_clear(&sig);
	free(field);
	return 0;
}

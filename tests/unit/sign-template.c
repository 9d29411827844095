/* Signing fields laid out in advance: see sign-template.h. */
#include "dkim-private.h"
#include "sign-template.h"

#include <stdlib.h>
#include <string.h>

static const struct dkim_tag *
template_tag(const struct dkim_taglist *tags, const char *name,
	     struct dkim_error *error)
{
	const struct dkim_tag *tag = dkim_taglist_find(tags, name);

	if (tag == NULL)
		dkim_error_set(error, "template lacks %s=", name);
	return tag;
}

char *
sign_template_field(const dkim_privkey *key, const char *field,
		    const void *message, size_t message_len,
		    struct dkim_error *error)
{
	struct dkim_taglist tags;
	struct dkim_headers headers;
	struct dkim_body_canon body;
	enum dkim_canon header_canon = DKIM_CANON_SIMPLE;
	enum dkim_canon body_canon = DKIM_CANON_SIMPLE;
	const char *colon = strchr(field, ':');
	char *result = NULL;

	if (colon == NULL || dkim_taglist_parse(colon + 1, strlen(colon + 1),
						&tags, error) != DKIM_TAGLIST_OK)
		return NULL;
	const struct dkim_tag *c = dkim_taglist_find(&tags, "c");
	const struct dkim_tag *h = template_tag(&tags, "h", error);
	const struct dkim_tag *bh = template_tag(&tags, "bh", error);
	const struct dkim_tag *b = template_tag(&tags, "b", error);
	if (h == NULL || bh == NULL || b == NULL)
		return NULL;
	if (c != NULL) {
		char *text = dkim_strndup(c->value, c->value_len);
		bool ok = dkim_canon_parse(text, &header_canon, &body_canon);
		free(text);
		if (!ok) {
			dkim_error_set(error, "template has a bad c=");
			return NULL;
		}
	}

	dkim_headers_init(&headers, SIZE_MAX);
	dkim_body_canon_init(&body, body_canon);
	struct dkim_body_hash *body_hash = dkim_body_canon_hash(&body,
								UINT64_MAX);
	size_t used = dkim_headers_feed(&headers, message, message_len);
	dkim_headers_finish(&headers);
	dkim_body_canon_feed(&body, (const char *)message + used,
			     message_len - used);
	dkim_body_canon_finish(&body);

	/* The field with bh= filled in and b= still empty. */
	size_t value_start = (size_t)(colon + 1 - field);
	struct dkim_buf filled = { 0 };
	dkim_buf_append(&filled, field, value_start + bh->raw_value_start);
	dkim_base64_encode(&filled, body_hash->digest, DKIM_SHA256_LEN);
	size_t b_start = value_start + b->raw_value_start;
	dkim_buf_append(&filled, field + value_start + bh->raw_value_end,
			b_start - (value_start + bh->raw_value_end));
	size_t b_pos = filled.len;
	dkim_buf_append_str(&filled, field + value_start + b->raw_value_end);

	size_t name_count = 0, pos = 0, alloc = 16, item_len;
	const char *item;
	struct dkim_header_name *names = dkim_malloc(alloc * sizeof(*names));
	while (dkim_tag_list_next(h, &pos, &item, &item_len)) {
		if (name_count == alloc) {
			alloc *= 2;
			names = dkim_realloc(names, alloc * sizeof(*names));
		}
		names[name_count].name = item;
		names[name_count++].len = item_len;
	}

	unsigned char digest[DKIM_SHA256_LEN];
	size_t sig_len;
	dkim_hash_signed_headers(&headers, header_canon, names, name_count,
				 filled.data, filled.len, b_pos, b_pos, digest);
	unsigned char *sig = dkim_privkey_sign(key, digest, &sig_len);
	if (sig == NULL) {
		dkim_error_set(error, "signing failed in the crypto library");
	} else {
		struct dkim_buf out = { 0 };
		dkim_buf_append(&out, filled.data, b_pos);
		dkim_base64_encode(&out, sig, sig_len);
		dkim_buf_append_str(&out, filled.data + b_pos);
		result = dkim_buf_steal(&out);
		free(sig);
	}
	free(names);
	dkim_buf_free(&filled);
	dkim_body_canon_free(&body);
	dkim_headers_free(&headers);
	return result;
}

char *
sign_template_arc_seal(const dkim_privkey *key, const char *seal,
		       const char *aar, const char *ams,
		       const void *message, size_t message_len,
		       struct dkim_error *error)
{
	const char *colon = strchr(seal, ':');
	struct dkim_taglist tags;
	uint64_t instance;

	if (colon == NULL || dkim_taglist_parse(colon + 1, strlen(colon + 1),
						&tags, error) != DKIM_TAGLIST_OK)
		return NULL;
	const struct dkim_tag *b = dkim_taglist_find(&tags, "b");
	const struct dkim_tag *i = dkim_taglist_find(&tags, "i");
	const struct dkim_tag *cv = dkim_taglist_find(&tags, "cv");
	if (b == NULL || b->value_len != 0 || i == NULL || cv == NULL ||
	    i->value_len == 0 || i->value_len > 2 ||
	    (instance = strtoull(i->value, NULL, 10)) == 0) {
		dkim_error_set(error, "seal template needs i=, cv= and an "
			       "empty b=");
		return NULL;
	}
	bool pass = dkim_tag_value_is(cv, "pass");

	struct dkim_arc_chain chain = { 0 };
	struct dkim_headers headers;
	struct dkim_unsigned_field field = { .text = { 0 } };
	unsigned char digest[DKIM_SHA256_LEN];
	char *result = NULL;

	dkim_headers_init(&headers, SIZE_MAX);
	dkim_headers_feed(&headers, message, message_len);
	dkim_headers_finish(&headers);
	if (pass && (!dkim_arc_chain_collect(&chain, &headers) ||
		     chain.count != instance - 1)) {
		dkim_error_set(error, "the message does not hold the %u sets "
			       "the seal covers", (unsigned)instance - 1);
	} else {
		/* The template without its b= value's whitespace. */
		size_t value_start = (size_t)(colon + 1 - seal);
		dkim_buf_append(&field.text, seal,
				value_start + b->raw_value_start);
		dkim_buf_append_str(&field.text,
				    seal + value_start + b->raw_value_end);
		field.b_pos = value_start + b->raw_value_start;
		field.b_column = 0;
		field.b_width = DKIM_FOLD_WIDTH;
		if (dkim_arc_seal_digest(&chain, &headers,
					 pass ? (unsigned)instance - 1 : 0,
					 aar, ams, &field, digest) &&
		    dkim_sign_fill_b(&field, key, digest, error) == 0)
			result = dkim_buf_steal(&field.text);
	}
	dkim_buf_free(&field.text);
	dkim_arc_chain_free(&chain);
	dkim_headers_free(&headers);
	return result;
}

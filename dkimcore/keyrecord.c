/* Key records (RFC 6376 §3.6.1, RFC 8463 §4): the TXT record at
 * <selector>._domainkey.<domain>.  Only what the record itself says is
 * checked here; whether it fits a given signature is the verifier's job. */
#include "dkim-private.h"

#include <stdlib.h>
#include <string.h>

static bool
list_contains(const struct dkim_tag *tag, const char *word)
{
	const char *item;
	size_t item_len, pos = 0;

	while (dkim_tag_list_next(tag, &pos, &item, &item_len)) {
		if (dkim_mem_equal_icase(item, item_len, word, strlen(word)))
			return true;
	}
	return false;
}

static enum dkim_reason
decode_key(const struct dkim_tag *p, struct dkim_key_record *record,
	   dkim_pubkey *key, struct dkim_error *error)
{
	size_t der_len;
	unsigned char *der = dkim_base64_decode(p->value, p->value_len,
						&der_len);
	enum dkim_reason reason = DKIM_REASON_NONE;

	if (der == NULL) {
		dkim_error_set(error, "key data p= is not valid base64");
		return DKIM_REASON_KEY_DATA;
	}
	key->type = record->type;
	if (record->type == DKIM_KEY_ED25519) {
		if (der_len != DKIM_ED25519_KEY_LEN) {
			dkim_error_set(error, "Ed25519 key must be 32 bytes, "
				       "p= holds %zu", der_len);
			reason = DKIM_REASON_KEY_DATA;
		} else {
			memcpy(key->ed25519, der, DKIM_ED25519_KEY_LEN);
			key->bits = 256;
		}
	} else if (!dkim_rsa_pubkey_from_der(key, der, der_len)) {
		dkim_error_set(error, "key data p= is not an RSA public key");
		reason = DKIM_REASON_KEY_DATA;
	} else if (key->bits > DKIM_RSA_MAX_BITS) {
		dkim_error_set(error, "RSA key too large (%u bits, limit %u)",
			       key->bits, DKIM_RSA_MAX_BITS);
		reason = DKIM_REASON_KEY_TOO_LARGE;
	} else if (key->bits < DKIM_RSA_MIN_BITS) {
		dkim_error_set(error, "RSA key too small (%u bits)", key->bits);
		reason = DKIM_REASON_KEY_TOO_SMALL;
	}
	record->bits = key->bits;
	free(der);
	return reason;
}

enum dkim_reason
dkim_key_record_parse(const char *txt, size_t len,
		      struct dkim_key_record *record_r, dkim_pubkey **key_r,
		      struct dkim_error *error)
{
	struct dkim_taglist tags;
	struct dkim_error parse_error;
	const struct dkim_tag *tag;

	memset(record_r, 0, sizeof(*record_r));
	record_r->type = DKIM_KEY_RSA;
	record_r->allows_sha256 = true;
	record_r->email_service = true;
	if (key_r != NULL)
		*key_r = NULL;

	if (dkim_taglist_parse(txt, len, &tags, &parse_error) !=
	    DKIM_TAGLIST_OK) {
		dkim_error_set(error, "malformed key record: %s",
			       parse_error.text);
		return DKIM_REASON_KEY_SYNTAX;
	}

	tag = dkim_taglist_find(&tags, "v");
	if (tag != NULL && (tag != &tags.tags[0] ||
			    !dkim_tag_value_is(tag, "DKIM1"))) {
		dkim_error_set(error, "key record version is not v=DKIM1 "
			       "as the first tag");
		return DKIM_REASON_KEY_VERSION;
	}

	if ((tag = dkim_taglist_find(&tags, "k")) != NULL) {
		if (dkim_tag_value_is(tag, "rsa"))
			record_r->type = DKIM_KEY_RSA;
		else if (dkim_tag_value_is(tag, "ed25519"))
			record_r->type = DKIM_KEY_ED25519;
		else {
			char *shown = dkim_sanitize(tag->value, tag->value_len);
			dkim_error_set(error, "unknown key type k=%s", shown);
			free(shown);
			return DKIM_REASON_KEY_TYPE_UNKNOWN;
		}
	}
	if ((tag = dkim_taglist_find(&tags, "h")) != NULL)
		record_r->allows_sha256 = list_contains(tag, "sha256");
	if ((tag = dkim_taglist_find(&tags, "s")) != NULL)
		record_r->email_service = list_contains(tag, "email") ||
			list_contains(tag, "*");
	if ((tag = dkim_taglist_find(&tags, "t")) != NULL) {
		record_r->testing = list_contains(tag, "y");
		record_r->strict_identity = list_contains(tag, "s");
	}

	tag = dkim_taglist_find(&tags, "p");
	if (tag == NULL) {
		dkim_error_set(error, "key record has no p= tag");
		return DKIM_REASON_KEY_SYNTAX;
	}
	if (tag->value_len == 0) {
		record_r->revoked = true;
		dkim_error_set(error, "key revoked (empty p=)");
		return DKIM_REASON_NONE;
	}

	dkim_pubkey *key = dkim_calloc(1, sizeof(*key));
	enum dkim_reason reason = decode_key(tag, record_r, key, error);
	if (reason != DKIM_REASON_NONE || key_r == NULL)
		dkim_pubkey_free(&key);
	else
		*key_r = key;
	return reason;
}

void
dkim_pubkey_free(dkim_pubkey **key)
{
	if (*key == NULL)
		return;
	free((*key)->modulus);
	free((*key)->exponent);
	free(*key);
	*key = NULL;
}

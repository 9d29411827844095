/* Key records (dkim_key_record_parse) with their base64 and DER decoding,
 * and the RSA/Ed25519 verification primitives on whatever key comes out.
 *
 * Input: the TXT record text.  The same bytes are also given to the DER
 * decoder directly, which reaches it far faster than through base64. */
#include "dkim-private.h"
#include "fuzz.h"

static void
check_record(const struct dkim_key_record *record, enum dkim_reason reason,
	     const dkim_pubkey *key, const struct dkim_error *error)
{
	if (reason != DKIM_REASON_NONE) {
		FUZZ_ASSERT(key == NULL, "key returned with an error");
		fuzz_check_shown(error->text, sizeof(error->text) - 1,
				 "error text");
		return;
	}
	if (record->revoked) {
		FUZZ_ASSERT(key == NULL, "revoked record returned a key");
		return;
	}
	FUZZ_ASSERT(key != NULL, "usable record without a key");
	FUZZ_ASSERT(key->type == record->type && key->bits == record->bits,
		    "key and record disagree on the key");
	if (key->type == DKIM_KEY_ED25519) {
		FUZZ_ASSERT(key->bits == 256, "Ed25519 key with %u bits",
			    key->bits);
	} else {
		FUZZ_ASSERT(key->type == DKIM_KEY_RSA, "unknown key type");
		FUZZ_ASSERT(key->bits >= DKIM_RSA_MIN_BITS &&
			    key->bits <= DKIM_RSA_MAX_BITS,
			    "RSA key of %u bits accepted", key->bits);
	}
}

/* A signature that cannot be right must never verify, whatever the key:
 * for RSA n - 1 (odd n, so no borrow), whose e-th power is n - 1 again;
 * for Ed25519 all zeros. */
static void
check_bad_signature(const dkim_pubkey *key)
{
	unsigned char digest[DKIM_SHA256_LEN] = { 0 };
	unsigned char *sig;
	size_t sig_len;

	if (key->type == DKIM_KEY_RSA) {
		sig_len = key->modulus_len;
		sig = dkim_memdup(key->modulus, sig_len);
		sig[sig_len - 1]--;
	} else {
		sig_len = DKIM_ED25519_SIG_LEN;
		sig = dkim_calloc(1, sig_len);
	}
	FUZZ_ASSERT(dkim_pubkey_verify(key, digest, sig, sig_len) !=
		    DKIM_VERIFY_OK, "a forged signature verified");
	FUZZ_ASSERT(dkim_pubkey_verify(key, digest, sig, sig_len - 1) ==
		    DKIM_VERIFY_BAD_LENGTH, "a short signature was tried");
	free(sig);
}

static void
check_der(const uint8_t *data, size_t size)
{
	struct dkim_pubkey key;

	memset(&key, 0, sizeof(key));
	if (dkim_rsa_pubkey_from_der(&key, data, size)) {
		FUZZ_ASSERT(key.modulus_len > 0 && key.modulus[0] != 0 &&
			    (key.modulus[key.modulus_len - 1] & 1) != 0,
			    "bad modulus accepted");
		FUZZ_ASSERT(key.bits > (key.modulus_len - 1) * 8 &&
			    key.bits <= key.modulus_len * 8,
			    "%u bits for a %zu-byte modulus", key.bits,
			    key.modulus_len);
	}
	free(key.modulus);
	free(key.exponent);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* libFuzzer passes an exactly sized copy: ASan sees any read past
	 * the record. */
	const char *txt = (const char *)data;
	struct dkim_key_record record, record_again;
	struct dkim_error error, error_again;
	dkim_pubkey *key;

	enum dkim_reason reason = dkim_key_record_parse(txt, size, &record,
							&key, &error);
	check_record(&record, reason, key, &error);
	FUZZ_ASSERT(dkim_key_record_parse(txt, size, &record_again, NULL,
					  &error_again) == reason &&
		    memcmp(&record, &record_again, sizeof(record)) == 0,
		    "a syntax-only parse gives another result");
	if (key != NULL)
		check_bad_signature(key);
	dkim_pubkey_free(&key);
	check_der(data, size);
	return 0;
}

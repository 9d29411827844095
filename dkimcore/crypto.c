/* SHA-256, signature verification and signing primitives.
 *
 * RSA verification does not go through EVP: importing a DER public key
 * with OpenSSL 3's decoders costs about 100 us, five times the RSA
 * operation itself, and every message brings a freshly fetched key.  So
 * the key is decoded here (a few dozen lines of DER) and the PKCS#1 v1.5
 * check is done on BIGNUMs by comparing the whole encoded block against
 * the one expected (RFC 8017 §8.2.2), which leaves no padding parsing to
 * get wrong. */
#include "dkim-private.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* EVP_DigestInit_ex(EVP_sha256()) looks the implementation up in the
 * provider store on every call, which costs about as much as hashing a
 * small message.  It is fetched once per process instead: immutable once
 * fetched, so sharing it couples no two contexts. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
fetch_sha256(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void
dkim_sha256_init(struct dkim_sha256 *hash)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	pthread_once(&sha256_once, fetch_sha256);
	if (ctx == NULL || sha256_md == NULL ||
	    EVP_DigestInit_ex2(ctx, sha256_md, NULL) != 1) {
		/* Only fails when memory or the default provider is gone. */
		fprintf(stderr, "dkimcore: cannot initialize SHA-256\n");
		abort();
	}
	hash->ctx = ctx;
}

void
dkim_sha256_update(struct dkim_sha256 *hash, const void *data, size_t size)
{
	if (size > 0)
		(void)EVP_DigestUpdate(hash->ctx, data, size);
}

void
dkim_sha256_final(struct dkim_sha256 *hash,
		  unsigned char digest[DKIM_SHA256_LEN])
{
	(void)EVP_DigestFinal_ex(hash->ctx, digest, NULL);
}

void
dkim_sha256_free(struct dkim_sha256 *hash)
{
	EVP_MD_CTX_free(hash->ctx);
	hash->ctx = NULL;
}

/* ---- DER decoding of RSA public keys ---- */

struct der {
	const unsigned char *p;
	size_t left;
};

/* Reads one TLV with the expected tag; returns its contents. */
static bool
der_read(struct der *der, unsigned char tag, struct der *contents_r)
{
	if (der->left < 2 || der->p[0] != tag)
		return false;
	size_t len = der->p[1], header = 2;
	if (len & 0x80) {
		size_t octets = len & 0x7f;
		if (octets == 0 || octets > 4 || der->left < 2 + octets)
			return false; /* indefinite or absurd length */
		len = 0;
		for (size_t i = 0; i < octets; i++)
			len = (len << 8) | der->p[2 + i];
		header += octets;
	}
	if (len > der->left - header)
		return false;
	contents_r->p = der->p + header;
	contents_r->left = len;
	der->p += header + len;
	der->left -= header + len;
	return true;
}

/* A positive INTEGER, returned without leading zero octets. */
static bool
der_read_unsigned(struct der *der, const unsigned char **num_r,
		  size_t *len_r)
{
	struct der num;

	if (!der_read(der, 0x02, &num) || num.left == 0 || (num.p[0] & 0x80))
		return false;
	while (num.left > 0 && num.p[0] == 0) {
		num.p++;
		num.left--;
	}
	*num_r = num.p;
	*len_r = num.left;
	return num.left > 0;
}

static bool
rsa_pubkey_from_pkcs1(struct dkim_pubkey *key, struct der der)
{
	struct der seq;
	const unsigned char *n, *e;
	size_t n_len, e_len;

	if (!der_read(&der, 0x30, &seq) || der.left != 0 ||
	    !der_read_unsigned(&seq, &n, &n_len) ||
	    !der_read_unsigned(&seq, &e, &e_len) || seq.left != 0)
		return false;
	/* An even modulus or an exponent below 3 is no RSA key. */
	if ((n[n_len - 1] & 1) == 0 || e_len > 8 ||
	    (e_len == 1 && e[0] < 3) || (e[e_len - 1] & 1) == 0)
		return false;

	unsigned top_bits = 0;
	for (unsigned char top = n[0]; top != 0; top >>= 1)
		top_bits++;
	key->type = DKIM_KEY_RSA;
	key->bits = (unsigned)(n_len - 1) * 8 + top_bits;
	key->modulus = dkim_memdup(n, n_len);
	key->modulus_len = n_len;
	key->exponent = dkim_memdup(e, e_len);
	key->exponent_len = e_len;
	return true;
}

bool
dkim_rsa_pubkey_from_der(struct dkim_pubkey *key, const unsigned char *der,
			 size_t der_len)
{
	/* 1.2.840.113549.1.1.1 */
	static const unsigned char rsa_encryption[] = {
		0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01
	};
	struct der in = { der, der_len }, spki, algorithm, oid, bits;

	if (der_len > 0 && der[0] == 0x30) {
		struct der probe = in;
		/* SubjectPublicKeyInfo starts SEQUENCE { SEQUENCE ... }, a
		 * bare RSAPublicKey SEQUENCE { INTEGER ... }. */
		if (der_read(&probe, 0x30, &spki) && spki.left > 0 &&
		    spki.p[0] == 0x02)
			return rsa_pubkey_from_pkcs1(key, in);
	}
	if (!der_read(&in, 0x30, &spki) || in.left != 0 ||
	    !der_read(&spki, 0x30, &algorithm) ||
	    !der_read(&algorithm, 0x06, &oid) ||
	    oid.left != sizeof(rsa_encryption) ||
	    memcmp(oid.p, rsa_encryption, sizeof(rsa_encryption)) != 0)
		return false;
	/* The parameters must be NULL or absent. */
	if (algorithm.left != 0) {
		struct der null;
		if (!der_read(&algorithm, 0x05, &null) || null.left != 0 ||
		    algorithm.left != 0)
			return false;
	}
	if (!der_read(&spki, 0x03, &bits) || spki.left != 0 ||
	    bits.left < 1 || bits.p[0] != 0)
		return false;
	bits.p++;
	bits.left--;
	return rsa_pubkey_from_pkcs1(key, bits);
}

/* ---- verification ---- */

static enum dkim_verify_status
rsa_verify(const struct dkim_pubkey *key,
	   const unsigned char digest[DKIM_SHA256_LEN],
	   const unsigned char *sig, size_t sig_len)
{
	/* DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1). */
	static const unsigned char sha256_prefix[] = {
		0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20
	};
	size_t k = key->modulus_len;
	enum dkim_verify_status status = DKIM_VERIFY_INTERNAL;

	if (sig_len != k)
		return DKIM_VERIFY_BAD_LENGTH;

	unsigned char *expected = dkim_malloc(k), *decoded = dkim_malloc(k);
	size_t padding = k - 3 - sizeof(sha256_prefix) - DKIM_SHA256_LEN;
	expected[0] = 0x00;
	expected[1] = 0x01;
	memset(expected + 2, 0xff, padding);
	expected[2 + padding] = 0x00;
	memcpy(expected + 3 + padding, sha256_prefix, sizeof(sha256_prefix));
	memcpy(expected + k - DKIM_SHA256_LEN, digest, DKIM_SHA256_LEN);

	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *n = BN_bin2bn(key->modulus, (int)k, NULL);
	BIGNUM *e = BN_bin2bn(key->exponent, (int)key->exponent_len, NULL);
	BIGNUM *s = BN_bin2bn(sig, (int)sig_len, NULL);
	BIGNUM *m = BN_new();
	if (ctx == NULL || n == NULL || e == NULL || s == NULL || m == NULL)
		goto out;
	if (BN_cmp(s, n) >= 0) {
		status = DKIM_VERIFY_BAD_SIGNATURE;
		goto out;
	}
	if (BN_mod_exp_mont(m, s, e, n, ctx, NULL) != 1 ||
	    BN_bn2binpad(m, decoded, (int)k) != (int)k)
		goto out;
	status = CRYPTO_memcmp(decoded, expected, k) == 0 ?
		DKIM_VERIFY_OK : DKIM_VERIFY_BAD_SIGNATURE;
out:
	BN_free(m);
	BN_free(s);
	BN_free(e);
	BN_free(n);
	BN_CTX_free(ctx);
	free(decoded);
	free(expected);
	ERR_clear_error();
	return status;
}

static enum dkim_verify_status
ed25519_verify(const struct dkim_pubkey *key,
	       const unsigned char digest[DKIM_SHA256_LEN],
	       const unsigned char *sig, size_t sig_len)
{
	enum dkim_verify_status status = DKIM_VERIFY_INTERNAL;

	if (sig_len != DKIM_ED25519_SIG_LEN)
		return DKIM_VERIFY_BAD_LENGTH;

	EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
						     key->ed25519,
						     DKIM_ED25519_KEY_LEN);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (pkey != NULL && ctx != NULL &&
	    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1) {
		/* RFC 8463 §3: PureEdDSA over the SHA-256 of the data. */
		int ret = EVP_DigestVerify(ctx, sig, sig_len, digest,
					   DKIM_SHA256_LEN);
		status = ret == 1 ? DKIM_VERIFY_OK :
			ret == 0 ? DKIM_VERIFY_BAD_SIGNATURE :
			DKIM_VERIFY_INTERNAL;
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return status;
}

enum dkim_verify_status
dkim_pubkey_verify(const struct dkim_pubkey *key,
		   const unsigned char digest[DKIM_SHA256_LEN],
		   const unsigned char *sig, size_t sig_len)
{
	switch (key->type) {
	case DKIM_KEY_RSA:
		return rsa_verify(key, digest, sig, sig_len);
	case DKIM_KEY_ED25519:
		return ed25519_verify(key, digest, sig, sig_len);
	case DKIM_KEY_NONE:
		break;
	}
	return DKIM_VERIFY_INTERNAL;
}

/* ---- signing ---- */

static bool
rsa_sign(EVP_PKEY *pkey, const unsigned char digest[DKIM_SHA256_LEN],
	 unsigned char **sig_r, size_t *sig_len_r)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
	size_t len = 0;
	bool ok = false;

	if (ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	    EVP_PKEY_sign(ctx, NULL, &len, digest, DKIM_SHA256_LEN) == 1) {
		*sig_r = dkim_malloc(len);
		ok = EVP_PKEY_sign(ctx, *sig_r, &len, digest,
				   DKIM_SHA256_LEN) == 1;
		if (!ok) {
			free(*sig_r);
			*sig_r = NULL;
		}
	}
	EVP_PKEY_CTX_free(ctx);
	*sig_len_r = len;
	return ok;
}

static bool
ed25519_sign(EVP_PKEY *pkey, const unsigned char digest[DKIM_SHA256_LEN],
	     unsigned char **sig_r, size_t *sig_len_r)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t len = DKIM_ED25519_SIG_LEN;
	bool ok = false;

	*sig_r = dkim_malloc(len);
	if (ctx != NULL &&
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
	    EVP_DigestSign(ctx, *sig_r, &len, digest, DKIM_SHA256_LEN) == 1)
		ok = true;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		free(*sig_r);
		*sig_r = NULL;
	}
	*sig_len_r = len;
	return ok;
}

unsigned char *
dkim_privkey_sign(const struct dkim_privkey *key,
		  const unsigned char digest[DKIM_SHA256_LEN],
		  size_t *sig_len_r)
{
	unsigned char *sig = NULL;
	bool ok = false;

	switch (key->type) {
	case DKIM_KEY_RSA:
		ok = rsa_sign(key->pkey, digest, &sig, sig_len_r);
		break;
	case DKIM_KEY_ED25519:
		ok = ed25519_sign(key->pkey, digest, &sig, sig_len_r);
		break;
	case DKIM_KEY_NONE:
		break;
	}
	ERR_clear_error();
	return ok ? sig : NULL;
}

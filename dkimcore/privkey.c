/* Private keys for signing: loading (with a permission check like
 * OpenDKIM's RequireSafeKeys), the matching public record, and comparison
 * with a published key. */
#include "dkim-private.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DKIM_MAX_KEY_FILE_SIZE (1024 * 1024)

/* Never prompt for a passphrase: an encrypted key is an error. */
static int
no_passphrase(char *buf, int size, int rwflag, void *context)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)context;
	return -1;
}

static EVP_PKEY *
parse_pem(const void *data, size_t len)
{
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	EVP_PKEY *pkey = NULL;

	if (bio != NULL) {
		pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
		BIO_free(bio);
	}
	return pkey;
}

/* dkimpy and RFC 8463 publish Ed25519 private keys as a base64 seed. */
static EVP_PKEY *
parse_ed25519_seed(const void *data, size_t len)
{
	size_t seed_len;
	unsigned char *seed = dkim_base64_decode(data, len, &seed_len);
	EVP_PKEY *pkey = NULL;

	if (seed != NULL && seed_len == DKIM_ED25519_KEY_LEN)
		pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
						    seed, seed_len);
	if (seed != NULL)
		OPENSSL_cleanse(seed, seed_len);
	free(seed);
	return pkey;
}

int
dkim_privkey_parse(const void *data, size_t len, dkim_privkey **key_r,
		   struct dkim_error *error)
{
	EVP_PKEY *pkey = memmem(data, len, "-----BEGIN", 10) != NULL ?
		parse_pem(data, len) : parse_ed25519_seed(data, len);

	*key_r = NULL;
	ERR_clear_error();
	if (pkey == NULL) {
		dkim_error_set(error, "not a PEM private key (or it is "
			       "encrypted), nor a base64 Ed25519 seed");
		return -1;
	}

	dkim_privkey *key = dkim_calloc(1, sizeof(*key));
	key->pkey = pkey;
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		key->type = DKIM_KEY_RSA;
		key->bits = (unsigned)EVP_PKEY_get_bits(pkey);
		if (key->bits < DKIM_RSA_MIN_BITS ||
		    key->bits > DKIM_RSA_MAX_BITS) {
			dkim_error_set(error, "RSA key has %u bits; %u to %u "
				       "are accepted", key->bits,
				       DKIM_RSA_MIN_BITS, DKIM_RSA_MAX_BITS);
			dkim_privkey_free(&key);
			return -1;
		}
		break;
	case EVP_PKEY_ED25519:
		key->type = DKIM_KEY_ED25519;
		key->bits = 256;
		break;
	default:
		dkim_error_set(error, "unsupported key type (only RSA and "
			       "Ed25519 sign DKIM)");
		dkim_privkey_free(&key);
		return -1;
	}
	*key_r = key;
	return 0;
}

static int
read_key_file(int fd, const char *path, struct dkim_buf *data,
	      struct dkim_error *error)
{
	char block[4096];
	ssize_t ret;

	while ((ret = read(fd, block, sizeof(block))) != 0) {
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			dkim_error_set(error, "cannot read key file %s: %s",
				       path, strerror(errno));
			return -1;
		}
		if (data->len + (size_t)ret > DKIM_MAX_KEY_FILE_SIZE) {
			dkim_error_set(error, "key file %s is too large", path);
			return -1;
		}
		dkim_buf_append(data, block, (size_t)ret);
	}
	return 0;
}

int
dkim_privkey_load(const char *path, unsigned flags, dkim_privkey **key_r,
		  struct dkim_error *error)
{
	struct dkim_buf data = { 0 };
	struct stat st;
	int ret = -1;

	*key_r = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		dkim_error_set(error, "cannot open key file %s: %s", path,
			       strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		dkim_error_set(error, "cannot stat key file %s: %s", path,
			       strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		dkim_error_set(error, "key file %s is not a regular file",
			       path);
	} else if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0 &&
		   (flags & DKIM_PRIVKEY_ALLOW_UNSAFE) == 0) {
		dkim_error_set(error, "key file %s is accessible by group or "
			       "others (mode %04o): make it readable by its "
			       "owner only (chmod 600)", path,
			       (unsigned)(st.st_mode & 07777));
	} else if (read_key_file(fd, path, &data, error) == 0) {
		struct dkim_error parse_error;
		ret = dkim_privkey_parse(data.data, data.len, key_r,
					 &parse_error);
		if (ret < 0)
			dkim_error_set(error, "key file %s: %s", path,
				       parse_error.text);
	}
	close(fd);
	if (data.data != NULL)
		OPENSSL_cleanse(data.data, data.len);
	dkim_buf_free(&data);
	return ret;
}

enum dkim_key_type
dkim_privkey_type(const dkim_privkey *key)
{
	return key->type;
}

unsigned
dkim_privkey_bits(const dkim_privkey *key)
{
	return key->bits;
}

char *
dkim_privkey_public_record(const dkim_privkey *key)
{
	struct dkim_buf record = { 0 };

	if (key->type == DKIM_KEY_ED25519) {
		unsigned char raw[DKIM_ED25519_KEY_LEN];
		size_t raw_len = sizeof(raw);

		if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &raw_len) != 1)
			return NULL;
		dkim_buf_append_str(&record, "v=DKIM1; k=ed25519; p=");
		dkim_base64_encode(&record, raw, raw_len);
	} else {
		unsigned char *der = NULL;
		int der_len = i2d_PUBKEY(key->pkey, &der);

		if (der_len <= 0)
			return NULL;
		dkim_buf_append_str(&record, "v=DKIM1; k=rsa; p=");
		dkim_base64_encode(&record, der, (size_t)der_len);
		OPENSSL_free(der);
	}
	ERR_clear_error();
	return dkim_buf_steal(&record);
}

static bool
bn_param_equals(EVP_PKEY *pkey, const char *name, const unsigned char *value,
		size_t value_len)
{
	BIGNUM *bn = NULL;
	bool equal = false;

	if (EVP_PKEY_get_bn_param(pkey, name, &bn) == 1) {
		BIGNUM *other = BN_bin2bn(value, (int)value_len, NULL);
		equal = other != NULL && BN_cmp(bn, other) == 0;
		BN_free(other);
	}
	BN_free(bn);
	return equal;
}

bool
dkim_privkey_matches(const dkim_privkey *key, const dkim_pubkey *pub)
{
	bool match = false;

	if (pub == NULL || key->type != pub->type)
		return false;
	if (key->type == DKIM_KEY_ED25519) {
		unsigned char raw[DKIM_ED25519_KEY_LEN];
		size_t raw_len = sizeof(raw);

		match = EVP_PKEY_get_raw_public_key(key->pkey, raw,
						    &raw_len) == 1 &&
			raw_len == sizeof(raw) &&
			memcmp(raw, pub->ed25519, sizeof(raw)) == 0;
	} else {
		match = bn_param_equals(key->pkey, OSSL_PKEY_PARAM_RSA_N,
					pub->modulus, pub->modulus_len) &&
			bn_param_equals(key->pkey, OSSL_PKEY_PARAM_RSA_E,
					pub->exponent, pub->exponent_len);
	}
	ERR_clear_error();
	return match;
}

void
dkim_privkey_free(dkim_privkey **key)
{
	if (*key == NULL)
		return;
	EVP_PKEY_free((*key)->pkey);
	free(*key);
	*key = NULL;
}

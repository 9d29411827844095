/* Key pairs and zone file lines: see tool-keygen.h. */
#include "tool-keygen.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 1035 3.3: a TXT character-string holds at most 255 bytes. */
#define TXT_STRING_MAX 255

char *
tool_keygen_pem(bool ed25519, unsigned bits)
{
	EVP_PKEY *pkey = ed25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
		EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL;

	if (pkey != NULL && bio != NULL &&
	    PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1) {
		char *data;
		long len = BIO_get_mem_data(bio, &data);
		pem = strndup(data, (size_t)len);
		OPENSSL_cleanse(data, (size_t)len);
	}
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return pem;
}

void
tool_keygen_free_pem(char **_pem)
{
	char *pem = *_pem;

	if (pem == NULL)
		return;
	*_pem = NULL;
	OPENSSL_cleanse(pem, strlen(pem));
	free(pem);
}

char *
tool_zone_line(const char *domain, const char *selector, const char *record)
{
	size_t len = strlen(record);
	size_t alloc = strlen(domain) + strlen(selector) + len + len / 64 + 64;
	char *line = malloc(alloc);

	if (line == NULL)
		abort();
	int pos = snprintf(line, alloc, "%s._domainkey.%s. IN TXT", selector,
			   domain);
	for (size_t i = 0; i < len; i += TXT_STRING_MAX) {
		size_t chunk = len - i < TXT_STRING_MAX ? len - i :
			TXT_STRING_MAX;
		pos += snprintf(line + pos, alloc - (size_t)pos, " \"%.*s\"",
				(int)chunk, record + i);
	}
	return line;
}

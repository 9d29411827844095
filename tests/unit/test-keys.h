/* Test keys made on the fly, and an in-memory resolver that counts its
 * lookups. */
#ifndef TEST_KEYS_H
#define TEST_KEYS_H

#include "dkim.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

static inline dkim_privkey *
test_key_generate(const char *type, unsigned bits)
{
	EVP_PKEY *pkey = strcmp(type, "ED25519") == 0 ?
		EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
		EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	BIO *bio = BIO_new(BIO_s_mem());
	dkim_privkey *key = NULL;
	char *pem;

	PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
	long len = BIO_get_mem_data(bio, &pem);
	if (dkim_privkey_parse(pem, (size_t)len, &key, NULL) < 0)
		abort();
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return key;
}

#define TEST_MAX_RECORDS 32

struct test_dns {
	struct {
		const char *name;
		const char *value;	/* NULL: NXDOMAIN */
		enum dkim_dns_status status;
		enum dkim_dnssec dnssec;
	} records[TEST_MAX_RECORDS];
	unsigned count;
	unsigned lookups;
};

static inline void
test_dns_add(struct test_dns *dns, const char *name, const char *value)
{
	dns->records[dns->count].name = name;
	dns->records[dns->count].value = value;
	dns->records[dns->count].status = DKIM_DNS_FOUND;
	dns->records[dns->count].dnssec = DKIM_DNSSEC_OFF;
	dns->count++;
}

static inline void
test_dns_fail(struct test_dns *dns, const char *name,
	      enum dkim_dns_status status)
{
	test_dns_add(dns, name, NULL);
	dns->records[dns->count - 1].status = status;
}

static inline enum dkim_dns_status
test_dns_lookup(void *context, const char *qname,
		struct dkim_dns_answer *answer)
{
	struct test_dns *dns = context;
	enum dkim_dns_status status = DKIM_DNS_NOT_FOUND;

	dns->lookups++;
	for (unsigned i = 0; i < dns->count; i++) {
		if (strcmp(dns->records[i].name, qname) != 0)
			continue;
		dkim_dns_answer_set_dnssec(answer, dns->records[i].dnssec);
		if (dns->records[i].value == NULL)
			return dns->records[i].status;
		dkim_dns_answer_add(answer, dns->records[i].value,
				    strlen(dns->records[i].value));
		status = DKIM_DNS_FOUND;
	}
	return status;
}

#endif

/* Relaxed domain alignment (RFC 7489 §3.1.1): two domains align when
 * their organizational domains, found with the public suffix list, are
 * the same. */
#include "dkim-private.h"

#include <libpsl.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

/* The list is read once per process and never changes afterwards, so
 * sharing it does not tie independent contexts together. */
static const psl_ctx_t *public_suffixes;
static pthread_once_t public_suffixes_once = PTHREAD_ONCE_INIT;

static void
load_public_suffixes(void)
{
	/* The newer of libpsl's built-in list and the system's file. */
	public_suffixes = psl_latest(NULL);
}

/* libpsl wants lowercase input; `lowered` holds the copy. */
static const char *
organizational_domain(const char *domain, char lowered[256])
{
	const char *registrable = NULL;
	size_t len = strlen(domain);

	if (len >= 256)
		return domain;
	memcpy(lowered, domain, len + 1);
	dkim_ascii_lowercase(lowered);
	pthread_once(&public_suffixes_once, load_public_suffixes);
	if (public_suffixes != NULL)
		registrable = psl_registrable_domain(public_suffixes, lowered);
	return registrable != NULL ? registrable : lowered;
}

bool
dkim_domains_aligned(const char *domain1, const char *domain2)
{
	char lowered1[256], lowered2[256];

	if (domain1 == NULL || domain2 == NULL)
		return false;
	if (strcasecmp(domain1, domain2) == 0)
		return true;
	return strcasecmp(organizational_domain(domain1, lowered1),
			  organizational_domain(domain2, lowered2)) == 0;
}

/* The From-field parser (dkim_from_domain), which DMARC alignment and the
 * "one From" policy depend on.
 *
 * Input: the From field value.  A domain, when one comes out, must be a
 * valid lowercase domain name: it is shown and compared as one.  A NUL
 * byte must count as just another control character: a MUA may stop
 * reading at it, so text after it must not change what the author is. */
#include "dkim-private.h"
#include "fuzz.h"

static void
check_domain(const char *domain, const char *value, size_t size)
{
	size_t len = strlen(domain);

	FUZZ_ASSERT(dkim_domain_is_valid(domain, len),
		    "invalid From domain \"%s\"", domain);
	for (size_t i = 0; i < len; i++)
		FUZZ_ASSERT(domain[i] < 'A' || domain[i] > 'Z',
			    "From domain \"%s\" is not lowercase", domain);
	FUZZ_ASSERT(memchr(value, '@', size) != NULL,
		    "domain \"%s\" from a value without '@'", domain);
}

/* The result with every NUL turned into another control byte. */
static char *
domain_without_nul(const char *value, size_t size)
{
	char *copy = dkim_memdup(value, size);

	for (size_t i = 0; i < size; i++) {
		if (copy[i] == '\0')
			copy[i] = '\x01';
	}
	char *domain = dkim_from_domain(copy, size);
	free(copy);
	return domain;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* libFuzzer passes an exactly sized copy: ASan sees any read past
	 * the value. */
	const char *value = (const char *)data;
	char *domain = dkim_from_domain(value, size);

	if (domain != NULL)
		check_domain(domain, value, size);
	if (memchr(value, '\0', size) != NULL) {
		char *other = domain_without_nul(value, size);
		FUZZ_ASSERT((domain == NULL && other == NULL) ||
			    (domain != NULL && other != NULL &&
			     strcmp(domain, other) == 0),
			    "a NUL byte makes the From domain %s instead of %s",
			    domain != NULL ? domain : "(none)",
			    other != NULL ? other : "(none)");
		free(other);
	}
	free(domain);
	return 0;
}

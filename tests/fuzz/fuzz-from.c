/* The From-field parser (dkim_from_domain), which DMARC alignment and the
 * "one From" policy depend on.
 *
 * Input: the From field value.  A domain, when one comes out, must be a
 * valid lowercase domain name: it is shown and compared as one. */
#include "dkim-private.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* libFuzzer passes an exactly sized copy: ASan sees any read past
	 * the value. */
	const char *value = (const char *)data;
	char *domain = dkim_from_domain(value, size);

	if (domain != NULL) {
		size_t len = strlen(domain);

		FUZZ_ASSERT(dkim_domain_is_valid(domain, len),
			    "invalid From domain \"%s\"", domain);
		for (size_t i = 0; i < len; i++)
			FUZZ_ASSERT(domain[i] < 'A' || domain[i] > 'Z',
				    "From domain \"%s\" is not lowercase",
				    domain);
		FUZZ_ASSERT(memmem(value, size, "@", 1) != NULL,
			    "domain \"%s\" from a value without '@'", domain);
	}
	free(domain);
	return 0;
}

/* dkim_authres_is_ours(), which decides which incoming
 * Authentication-Results fields are forged copies of ours.
 *
 * Input: a field value.  Besides memory errors: a value that starts with
 * our authserv-id and a ';' is always ours, whatever follows, and no value
 * is ever ours when the id is empty. */
#include "dkim.h"
#include "fuzz.h"

#define AUTHSERV_ID "mx.example.net"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char prefix[] = AUTHSERV_ID ";";
	const char *value = (const char *)data;
	size_t prefixed_len = strlen(prefix) + size;
	/* Exactly sized, like libFuzzer's own copy of the input, so that
	 * ASan sees any read past the value. */
	char *prefixed = malloc(prefixed_len);

	FUZZ_ASSERT(prefixed != NULL, "out of memory");
	memcpy(prefixed, prefix, strlen(prefix));
	if (size > 0)
		memcpy(prefixed + strlen(prefix), data, size);

	(void)dkim_authres_is_ours(value, size, AUTHSERV_ID);
	FUZZ_ASSERT(!dkim_authres_is_ours(value, size, ""),
		    "a value is ours for an empty authserv-id");
	FUZZ_ASSERT(dkim_authres_is_ours(prefixed, prefixed_len, AUTHSERV_ID),
		    "\"%s ...\" is not recognized as ours", prefix);
	free(prefixed);
	return 0;
}

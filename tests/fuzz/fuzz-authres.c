/* dkim_authres_is_ours(), which decides which incoming
 * Authentication-Results fields are forged copies of ours.
 *
 * Input: a field value.  Besides memory errors: a value that starts with
 * our authserv-id and a ';' (or a '.', a NUL, a comment made of the input
 * around it) is always ours, whatever follows; no value is ever ours when
 * the id is empty; and the verdict is the same whatever the case of the
 * value or of the id, and with a trailing dot on the id. */
#include "dkim.h"
#include "fuzz.h"

#include <ctype.h>

#define AUTHSERV_ID "mx.example.net"

/* prefix + data + suffix, exactly sized (like libFuzzer's own copy of the
 * input, so that ASan sees any read past it). */
static char *
wrapped(const char *prefix, const uint8_t *data, size_t size,
	const char *suffix, size_t *len_r)
{
	size_t prefix_len = strlen(prefix), suffix_len = strlen(suffix);
	char *text = malloc(prefix_len + size + suffix_len + 1);

	FUZZ_ASSERT(text != NULL, "out of memory");
	memcpy(text, prefix, prefix_len);
	if (size > 0)
		memcpy(text + prefix_len, data, size);
	memcpy(text + prefix_len + size, suffix, suffix_len);
	*len_r = prefix_len + size + suffix_len;
	return text;
}

static void
check_ours_after(const char *prefix, const uint8_t *data, size_t size)
{
	size_t len;
	char *value = wrapped(prefix, data, size, "", &len);

	FUZZ_ASSERT(dkim_authres_is_ours(value, len, AUTHSERV_ID),
		    "\"%s...\" is not recognized as ours", prefix);
	free(value);
}

/* The input as the text of a comment in front of our id: quoted-pairs
 * keep it one comment whatever it holds. */
static void
check_comment(const uint8_t *data, size_t size)
{
	uint8_t *escaped = malloc(2 * size + 1);
	size_t len = 0, value_len;

	FUZZ_ASSERT(escaped != NULL, "out of memory");
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '(' || data[i] == ')' || data[i] == '\\')
			escaped[len++] = '\\';
		escaped[len++] = data[i];
	}
	char *value = wrapped("(", escaped, len, ") " AUTHSERV_ID "; x",
			      &value_len);
	FUZZ_ASSERT(dkim_authres_is_ours(value, value_len, AUTHSERV_ID),
		    "a comment hides our id");
	free(value);
	free(escaped);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *value = (const char *)data;
	bool ours = dkim_authres_is_ours(value, size, AUTHSERV_ID);
	size_t len;

	FUZZ_ASSERT(!dkim_authres_is_ours(value, size, ""),
		    "a value is ours for an empty authserv-id");
	FUZZ_ASSERT(dkim_authres_is_ours(value, size, "MX.Example.NET.") == ours,
		    "the case or a trailing dot of our id changes the verdict");

	char *swapped = wrapped("", data, size, "", &len);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)swapped[i];
		if (c < 0x80)
			swapped[i] = (char)(isupper(c) ? tolower(c) : toupper(c));
	}
	FUZZ_ASSERT(dkim_authres_is_ours(swapped, len, AUTHSERV_ID) == ours,
		    "the case of the value changes the verdict");
	free(swapped);

	check_ours_after(AUTHSERV_ID ";", data, size);
	check_ours_after(AUTHSERV_ID ".;", data, size);
	check_ours_after(AUTHSERV_ID "\"", data, size);
	check_ours_after(" \"" AUTHSERV_ID "\";", data, size);
	check_comment(data, size);
	/* a NUL right after the id */
	char *nul = wrapped(AUTHSERV_ID "?", data, size, "", &len);
	nul[strlen(AUTHSERV_ID)] = '\0';
	FUZZ_ASSERT(dkim_authres_is_ours(nul, len, AUTHSERV_ID),
		    "our id followed by a NUL is not recognized");
	free(nul);
	return 0;
}

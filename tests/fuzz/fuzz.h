/* Helpers shared by the libFuzzer targets. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void __attribute__((format(printf, 3, 4), noreturn))
fuzz_fail(const char *file, int line, const char *fmt, ...)
{
	va_list args;

	fprintf(stderr, "%s:%d: invariant broken: ", file, line);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
	/* A crash makes libFuzzer save the input as an artifact. */
	abort();
}

/* Like assert(), but never compiled out and with an explanation. */
#define FUZZ_ASSERT(cond, ...) do { \
	if (!(cond)) \
		fuzz_fail(__FILE__, __LINE__, __VA_ARGS__); \
} while (0)

/* A malloc()ed string made like printf(). */
static inline char * __attribute__((format(printf, 1, 2)))
fuzz_strdup_printf(const char *fmt, ...)
{
	va_list args;
	char *text;

	va_start(args, fmt);
	int ret = vasprintf(&text, fmt, args);
	va_end(args);
	FUZZ_ASSERT(ret >= 0, "out of memory");
	return text;
}

/* Offset of the first byte that is not printable US-ASCII, or len. */
static inline size_t
fuzz_unprintable_at(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c < 0x20 || c > 0x7e)
			return i;
	}
	return len;
}

/* dkim.h promises that every string taken from a message is printable
 * US-ASCII and bounded: safe to log and to put into header fields. */
static inline void
fuzz_check_shown(const char *text, size_t max_len, const char *what)
{
	if (text == NULL)
		return;
	size_t len = strlen(text);
	size_t bad = fuzz_unprintable_at(text, len);

	FUZZ_ASSERT(bad == len, "%s has byte 0x%02x at offset %zu: \"%s\"",
		    what, (unsigned char)text[bad], bad, text);
	FUZZ_ASSERT(len <= max_len, "%s is %zu bytes long, limit %zu", what,
		    len, max_len);
}

#endif

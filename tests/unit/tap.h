/* Minimal TAP producer for the C unit tests. */
#ifndef TAP_H
#define TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned tap_count, tap_failed;

static inline __attribute__((format(printf, 2, 3))) void
tap_ok(int ok, const char *fmt, ...)
{
	va_list args;

	tap_count++;
	if (!ok)
		tap_failed++;
	printf("%sok %u - ", ok ? "" : "not ", tap_count);
	va_start(args, fmt);
	vprintf(fmt, args);
	va_end(args);
	putchar('\n');
	fflush(stdout);
}

/* Ends a test that cannot run here at all: TAP's "1..0 # SKIP", counted as
 * one skip.  Returns main()'s exit status. */
static inline int
tap_skip_all(const char *reason)
{
	printf("1..0 # SKIP %s\n", reason);
	return 0;
}

static inline void
tap_diag(const char *fmt, ...)
{
	va_list args;

	fputs("# ", stdout);
	va_start(args, fmt);
	vprintf(fmt, args);
	va_end(args);
	putchar('\n');
}

#define tap_is_str(got, expected, name) do { \
	const char *tap_got_ = (got), *tap_exp_ = (expected); \
	int tap_eq_ = tap_got_ != NULL && tap_exp_ != NULL ? \
		strcmp(tap_got_, tap_exp_) == 0 : tap_got_ == tap_exp_; \
	tap_ok(tap_eq_, "%s", name); \
	if (!tap_eq_) \
		tap_diag("got '%s', expected '%s'", \
			 tap_got_ ? tap_got_ : "(null)", \
			 tap_exp_ ? tap_exp_ : "(null)"); \
} while (0)

#define tap_is_int(got, expected, name) do { \
	long long tap_got_ = (got), tap_exp_ = (expected); \
	tap_ok(tap_got_ == tap_exp_, "%s", name); \
	if (tap_got_ != tap_exp_) \
		tap_diag("got %lld, expected %lld", tap_got_, tap_exp_); \
} while (0)

static inline int
tap_done(void)
{
	printf("1..%u\n", tap_count);
	return tap_failed == 0 ? 0 : 1;
}

#endif

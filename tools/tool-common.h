/* Helpers shared by the command-line tools. */
#ifndef TOOL_COMMON_H
#define TOOL_COMMON_H

#include "dkim.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* sysexits(3) codes the tools document. */
#define EXIT_USAGE 64
#define EXIT_NOINPUT 66
#define EXIT_TEMPFAIL 75

extern const char *tool_name;

void tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tool_usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/* For getopt's '?': names the offending argument.  The tools set
 * opterr = 0 so that getopt does not print its own message too. */
void tool_bad_option(const char *usage, char *const argv[])
	__attribute__((noreturn));

/* -h/--help: prints the usage line and exits successfully. */
void tool_help(const char *usage) __attribute__((noreturn));
/* Exits with a usage error if arguments are left after the options. */
void tool_no_operands(const char *usage, int argc, char *const argv[]);

/* Exits with a usage error unless -d DOMAIN and -s SELECTOR were both given
 * and form a valid key record name. */
void tool_check_key_name(const char *usage, const char *domain,
			 const char *selector);

/* What to add to the error of dkim_privkey_load(): for a key file refused
 * by the safety rules, that --allow-unsafe-key skips them; else "". */
const char *tool_unsafe_key_hint(const struct dkim_error *error);

/* Parses a decimal number in [min, max] or exits with a usage error. */
unsigned long long tool_parse_number(const char *usage, const char *option,
				     const char *text, unsigned long long min,
				     unsigned long long max);

/* snprintf into a path buffer; a path that does not fit exits with an
 * error instead of naming some other, truncated, file. */
void tool_format_path(char *path, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Opens FILE or stdin ("-" or NULL); exits EXIT_NOINPUT on failure. */
FILE *tool_open_input(const char *path);
/* Reads a whole stream into memory. */
char *tool_read_all(FILE *file, size_t *size_r);

/* --dns-timeout SECONDS of the DNS-using tools: the default and the
 * largest value. */
#define TOOL_DNS_TIMEOUT_DEFAULT_SECS 5
#define TOOL_DNS_TIMEOUT_MAX_SECS 600

/* --dns-table, --resolver, --trust-anchor, gathered while parsing. */
struct tool_resolver_options {
	const char *table;
	const char *forward;
	const char *trust_anchor;
};

/* Long options every DNS-using tool accepts; the option values are
 * TOOL_OPT_DNS_TABLE etc. */
enum {
	TOOL_OPT_DNS_TABLE = 1000,
	TOOL_OPT_RESOLVER,
	TOOL_OPT_TRUST_ANCHOR,
	TOOL_OPT_FIRST_OWN,	/* tools number their own options from here */
};
#define TOOL_RESOLVER_LONG_OPTIONS \
	{ "dns-table", required_argument, NULL, TOOL_OPT_DNS_TABLE }, \
	{ "resolver", required_argument, NULL, TOOL_OPT_RESOLVER }, \
	{ "trust-anchor", required_argument, NULL, TOOL_OPT_TRUST_ANCHOR }

/* Handles one of the options above; returns false for any other. */
bool tool_resolver_option(struct tool_resolver_options *options, int opt,
			  const char *arg);
/* Creates the resolver or exits with a usage error. */
dkim_resolver *tool_resolver_create(const struct tool_resolver_options *options,
				    const char *usage);

/* Writes text with its CRLF line breaks turned into LF (for terminals). */
void tool_print_lf(FILE *out, const char *text);

#endif

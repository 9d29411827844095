#include "tool-common.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *tool_name = "dkim";

void
tool_error(const char *fmt, ...)
{
	va_list args;

	fprintf(stderr, "%s: ", tool_name);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
}

const char *
tool_unsafe_key_hint(const struct dkim_error *error)
{
	return strncmp(error->text, DKIM_PRIVKEY_UNSAFE_PREFIX,
		       strlen(DKIM_PRIVKEY_UNSAFE_PREFIX)) == 0 ?
		" (or pass --allow-unsafe-key)" : "";
}

void
tool_usage_error(const char *usage, const char *fmt, ...)
{
	va_list args;

	fprintf(stderr, "%s: ", tool_name);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fprintf(stderr, "\nusage: %s\n", usage);
	exit(EXIT_USAGE);
}

void
tool_bad_option(const char *usage, char *const argv[])
{
	tool_usage_error(usage, "unknown option or missing value: %s",
			 argv[optind - 1]);
}

void
tool_help(const char *usage)
{
	printf("usage: %s\n", usage);
	exit(EXIT_SUCCESS);
}

void
tool_no_operands(const char *usage, int argc, char *const argv[])
{
	if (optind < argc)
		tool_usage_error(usage, "unexpected argument %s", argv[optind]);
}

void
tool_check_key_name(const char *usage, const char *domain,
		    const char *selector)
{
	if (domain == NULL || selector == NULL)
		tool_usage_error(usage, "-d and -s are required");
	if (!dkim_domain_syntax_ok(domain))
		tool_usage_error(usage, "-d %s is not a domain name (labels of "
				 "letters, digits, '-', no trailing dot)",
				 domain);
	if (!dkim_selector_syntax_ok(selector))
		tool_usage_error(usage, "-s %s is not a selector (labels of "
				 "letters, digits, '-', '_')", selector);
}

void
tool_format_path(char *path, size_t size, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	int len = vsnprintf(path, size, fmt, args);
	va_end(args);
	if (len < 0 || (size_t)len >= size) {
		tool_error("path too long: %.64s...", path);
		exit(EXIT_FAILURE);
	}
}

unsigned long long
tool_parse_number(const char *usage, const char *option, const char *text,
		  unsigned long long min, unsigned long long max)
{
	char *end;

	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-' ||
	    value < min || value > max)
		tool_usage_error(usage, "%s needs a number from %llu to %llu, "
				 "not '%s'", option, min, max, text);
	return value;
}

FILE *
tool_open_input(const char *path)
{
	if (path == NULL || strcmp(path, "-") == 0)
		return stdin;
	FILE *file = fopen(path, "rb");
	if (file == NULL) {
		tool_error("cannot open %s: %s", path, strerror(errno));
		exit(EXIT_NOINPUT);
	}
	return file;
}

char *
tool_read_all(FILE *file, size_t *size_r)
{
	size_t size = 0, alloc = 65536;
	char *data = malloc(alloc);

	for (;;) {
		if (data == NULL) {
			tool_error("out of memory");
			exit(EXIT_FAILURE);
		}
		size += fread(data + size, 1, alloc - size, file);
		if (size < alloc)
			break;
		alloc *= 2;
		data = realloc(data, alloc);
	}
	if (ferror(file)) {
		tool_error("cannot read input: %s", strerror(errno));
		exit(EXIT_NOINPUT);
	}
	*size_r = size;
	return data;
}

bool
tool_resolver_option(struct tool_resolver_options *options, int opt,
		     const char *arg)
{
	switch (opt) {
	case TOOL_OPT_DNS_TABLE:
		options->table = arg;
		return true;
	case TOOL_OPT_RESOLVER:
		options->forward = arg;
		return true;
	case TOOL_OPT_TRUST_ANCHOR:
		options->trust_anchor = arg;
		return true;
	default:
		return false;
	}
}

dkim_resolver *
tool_resolver_create(const struct tool_resolver_options *options,
		     const char *usage)
{
	struct dkim_resolver_config config = {
		.forward = options->forward,
		.trust_anchor = options->trust_anchor,
		.table = options->table,
	};
	struct dkim_error error;
	dkim_resolver *resolver;

	if (dkim_resolver_new(&config, &resolver, &error) < 0)
		tool_usage_error(usage, "%s", error.text);
	return resolver;
}

void
tool_print_lf(FILE *out, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n')
			continue;
		fputc(*p, out);
	}
}

/* dkim-testkey: check the published key record of a selector, and with
 * -k that it belongs to a private key.  Explains what is wrong precisely,
 * above all the ways a record gets mangled on its way into a DNS panel.
 * See dkim-testkey(1). */
#include "tool-common.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"dkim-testkey -d DOMAIN -s SELECTOR [-k KEYFILE] "
	"[--dns-table FILE | --resolver ADDR[@PORT]] [--trust-anchor FILE] "
	"[--dns-timeout SECONDS] [--allow-unsafe-key]";

enum {
	OPT_DNS_TIMEOUT = TOOL_OPT_FIRST_OWN,
	OPT_ALLOW_UNSAFE_KEY,
};

static const struct option long_options[] = {
	TOOL_RESOLVER_LONG_OPTIONS,
	{ "domain", required_argument, NULL, 'd' },
	{ "selector", required_argument, NULL, 's' },
	{ "keyfile", required_argument, NULL, 'k' },
	{ "dns-timeout", required_argument, NULL, OPT_DNS_TIMEOUT },
	{ "allow-unsafe-key", no_argument, NULL, OPT_ALLOW_UNSAFE_KEY },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static int problems;

static void __attribute__((format(printf, 1, 2)))
problem(const char *fmt, ...)
{
	va_list args;

	fputs("ERROR: ", stdout);
	va_start(args, fmt);
	vprintf(fmt, args);
	va_end(args);
	putchar('\n');
	problems++;
}

/* The p= value as published, up to the next ';'. */
static const char *
find_p_value(const char *record, size_t len, size_t *p_len_r)
{
	for (size_t i = 0; i + 1 < len; i++) {
		bool tag_start = i == 0 || record[i - 1] == ';' ||
			record[i - 1] == ' ' || record[i - 1] == '\t';
		if (tag_start && record[i] == 'p' && record[i + 1] == '=') {
			const char *value = record + i + 2;
			const char *end = memchr(value, ';', len - (i + 2));
			*p_len_r = end != NULL ? (size_t)(end - value) :
				len - (i + 2);
			return value;
		}
	}
	return NULL;
}

/* Whitespace or quotes inside p= are legal base64-with-FWS at best and a
 * broken record at worst; either way they come from splitting the record
 * by hand or pasting zone-file quoting into a web panel. */
static void
check_splitting(const char *record, size_t len)
{
	size_t p_len;
	const char *p = find_p_value(record, len, &p_len);

	if (p == NULL)
		return;
	while (p_len > 0 && (p[p_len - 1] == ' ' || p[p_len - 1] == '\t'))
		p_len--;
	size_t start = 0;
	while (start < p_len && (p[start] == ' ' || p[start] == '\t'))
		start++;
	for (size_t i = start; i < p_len; i++) {
		if (p[i] == '"' || p[i] == '\\')
			problem("record found but pasted with zone-file quoting: "
				"p= has '%c' at offset %zu (enter the value "
				"without quotes)", p[i], i - start);
		else if (p[i] == ' ' || p[i] == '\t')
			problem("record found but split wrongly: p= has a %s at "
				"offset %zu", p[i] == ' ' ? "space" : "tab",
				i - start);
		else
			continue;
		return;
	}
}

static void
check_private_key(const char *keyfile, unsigned flags, const char *record,
		  size_t len)
{
	struct dkim_key_record info;
	struct dkim_error error;
	dkim_privkey *key;
	dkim_pubkey *pub;

	if (dkim_privkey_load(keyfile, flags, &key, &error) < 0) {
		problem("%s%s", error.text, tool_unsafe_key_hint(&error));
		return;
	}
	if (dkim_key_record_parse(record, len, &info, &pub, &error) ==
	    DKIM_REASON_NONE && pub != NULL) {
		if (dkim_privkey_matches(key, pub))
			printf("private key %s matches the published key\n",
			       keyfile);
		else
			problem("the published key does not belong to %s "
				"(a stale record, or the wrong selector?)",
				keyfile);
	}
	dkim_pubkey_free(&pub);
	dkim_privkey_free(&key);
}

/* Syntax, size and flags of the record, and with a key file whether it
 * belongs to it.  A record split wrongly is reported, yet the key is
 * still compared: both answers help whoever fixes the record. */
static void
check_record(const char *record, size_t len, const char *keyfile,
	     unsigned flags)
{
	struct dkim_key_record info;
	struct dkim_error error;

	check_splitting(record, len);
	enum dkim_reason reason = dkim_key_record_parse(record, len, &info,
							NULL, &error);
	if (reason != DKIM_REASON_NONE) {
		problem("%s", error.text);
		return;
	}
	if (info.revoked) {
		problem("the key is revoked (empty p=)");
		return;
	}
	printf("key: %s, %u bits\n",
	       info.type == DKIM_KEY_ED25519 ? "Ed25519" : "RSA", info.bits);
	if (info.type == DKIM_KEY_RSA && info.bits < 2048)
		printf("warning: RSA keys under 2048 bits are weak; generate "
		       "a 2048-bit key\n");
	if (info.testing)
		printf("warning: t=y (testing): receivers may treat signed "
		       "mail as unsigned\n");
	if (!info.email_service)
		problem("s= does not include email");
	if (!info.allows_sha256)
		problem("h= does not include sha256");
	if (keyfile != NULL)
		check_private_key(keyfile, flags, record, len);
}

int
main(int argc, char *argv[])
{
	struct tool_resolver_options resolver_options = { NULL, NULL, NULL };
	const char *domain = NULL, *selector = NULL, *keyfile = NULL;
	unsigned timeout_msecs = TOOL_DNS_TIMEOUT_DEFAULT_SECS * 1000;
	unsigned flags = 0;
	int opt;

	tool_name = "dkim-testkey";
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "d:s:k:h", long_options,
				  NULL)) != -1) {
		if (tool_resolver_option(&resolver_options, opt, optarg))
			continue;
		switch (opt) {
		case 'd':
			domain = optarg;
			break;
		case 's':
			selector = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case OPT_DNS_TIMEOUT:
			timeout_msecs = 1000 * (unsigned)tool_parse_number(
				usage, "--dns-timeout", optarg, 1,
				TOOL_DNS_TIMEOUT_MAX_SECS);
			break;
		case OPT_ALLOW_UNSAFE_KEY:
			flags |= DKIM_PRIVKEY_ALLOW_UNSAFE;
			break;
		case 'h':
			tool_help(usage);
		default:
			tool_bad_option(usage, argv);
		}
	}
	tool_no_operands(usage, argc, argv);
	tool_check_key_name(usage, domain, selector);

	dkim_resolver *resolver = tool_resolver_create(&resolver_options,
						       usage);
	char *qname = malloc(strlen(selector) + strlen(domain) + 16);
	sprintf(qname, "%s._domainkey.%s", selector, domain);
	const struct dkim_dns_result *answer =
		dkim_resolver_lookup(resolver, qname, timeout_msecs);

	if (answer->dnssec == DKIM_DNSSEC_BOGUS) {
		problem("DNSSEC validation of %s failed (bogus)", qname);
	} else if (answer->status == DKIM_DNS_NOT_FOUND) {
		problem("no TXT record at %s%s%s%s", qname,
			answer->detail != NULL ? " (" : "",
			answer->detail != NULL ? answer->detail : "",
			answer->detail != NULL ? ")" : "");
	} else if (answer->status != DKIM_DNS_FOUND) {
		problem("DNS lookup of %s failed: %s", qname,
			answer->detail != NULL ? answer->detail : "error");
	} else if (answer->record_count != 1) {
		problem("%zu TXT records at %s: DKIM needs exactly one",
			answer->record_count, qname);
	} else {
		printf("record at %s (%u TXT string%s):\n  %s\n", qname,
		       answer->string_counts[0],
		       answer->string_counts[0] == 1 ? "" : "s",
		       answer->records[0]);
		check_record(answer->records[0], answer->record_lengths[0],
			     keyfile, flags);
	}
	/* Only an answer (or its absence, proven) carries a DNSSEC state. */
	if (answer->status == DKIM_DNS_FOUND ||
	    answer->status == DKIM_DNS_NOT_FOUND ||
	    answer->dnssec == DKIM_DNSSEC_BOGUS)
		printf("DNSSEC: %s\n", answer->dnssec == DKIM_DNSSEC_OFF ?
		       "not validated (no trust anchor given)" :
		       dkim_dnssec_name(answer->dnssec));
	if (problems == 0)
		printf("OK\n");

	free(qname);
	dkim_resolver_free(&resolver);
	return problems == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

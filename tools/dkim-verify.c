/* dkim-verify: verify the DKIM signatures and the ARC chain of one
 * message and print an Authentication-Results field.  See dkim-verify(1). */
#include "tool-common.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
	"dkim-verify [--dns-table FILE | --resolver ADDR[@PORT]] "
	"[--trust-anchor FILE] [--now UNIXTIME] [--authserv-id ID] "
	"[--dns-timeout SECONDS] [--min-key-bits BITS] "
	"[--max-signatures N] [--accept-partial-body] [--no-arc] [-v] [FILE]";

enum {
	OPT_NOW = TOOL_OPT_FIRST_OWN,
	OPT_AUTHSERV_ID,
	OPT_DNS_TIMEOUT,
	OPT_MIN_KEY_BITS,
	OPT_MAX_SIGNATURES,
	OPT_ACCEPT_PARTIAL_BODY,
	OPT_NO_ARC,
};

static const struct option long_options[] = {
	TOOL_RESOLVER_LONG_OPTIONS,
	{ "now", required_argument, NULL, OPT_NOW },
	{ "authserv-id", required_argument, NULL, OPT_AUTHSERV_ID },
	{ "dns-timeout", required_argument, NULL, OPT_DNS_TIMEOUT },
	{ "min-key-bits", required_argument, NULL, OPT_MIN_KEY_BITS },
	{ "max-signatures", required_argument, NULL, OPT_MAX_SIGNATURES },
	{ "accept-partial-body", no_argument, NULL, OPT_ACCEPT_PARTIAL_BODY },
	{ "no-arc", no_argument, NULL, OPT_NO_ARC },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static void
print_signature(size_t index, const struct dkim_signature_result *sig)
{
	printf("signature %zu: %s d=%s s=%s a=%s", index + 1,
	       dkim_result_name(sig->result),
	       sig->domain != NULL ? sig->domain : "-",
	       sig->selector != NULL ? sig->selector : "-",
	       sig->algorithm != NULL ? sig->algorithm : "-");
	if (sig->key_bits != 0)
		printf(" key=%s-%u", sig->key_type == DKIM_KEY_ED25519 ?
		       "ed25519" : "rsa", sig->key_bits);
	else
		printf(" key=-");
	printf(" dnssec=%s", dkim_dnssec_name(sig->dnssec));
	if (sig->explanation != NULL)
		printf(" reason=%s: %s", dkim_reason_name(sig->reason),
		       sig->explanation);
	putchar('\n');
}

/* "arc: cv=..." (RFC 8617 §5.2), printed with -v for a message with ARC
 * sets, as the Authentication-Results field gets arc= then. */
static void
print_arc(const dkim_verifier *verifier)
{
	const struct dkim_arc_result *arc;
	enum dkim_result cv = dkim_verifier_arc(verifier, &arc);

	if (cv == DKIM_RESULT_NONE)
		return;
	printf("arc: cv=%s sets=%u", dkim_result_name(cv), arc->sets);
	if (cv == DKIM_RESULT_PASS)
		printf(" oldest-pass=%u d=%s", arc->oldest_pass,
		       arc->seal_domain != NULL ? arc->seal_domain : "-");
	if (arc->explanation != NULL)
		printf(" reason=%s: %s", dkim_reason_name(arc->reason),
		       arc->explanation);
	putchar('\n');
}

/* "from: DOMAIN", the author domain alignment would compare d= with, or
 * "from: none (WHY)". */
static void
print_author(const dkim_verifier *verifier)
{
	const char *domain = dkim_verifier_from_domain(verifier);

	if (domain != NULL)
		printf("from: %s\n", domain);
	else
		printf("from: none (%s)\n", dkim_author_status_text(
			dkim_verifier_author_status(verifier)));
}

static void
verify_stream(dkim_verifier *verifier, FILE *input)
{
	char block[65536];
	size_t len;

	while ((len = fread(block, 1, sizeof(block), input)) > 0)
		dkim_verifier_feed(verifier, block, len);
	if (ferror(input)) {
		tool_error("cannot read the message");
		exit(EXIT_NOINPUT);
	}
	dkim_verifier_finish(verifier);
}

int
main(int argc, char *argv[])
{
	struct tool_resolver_options resolver_options = { NULL, NULL, NULL };
	struct dkim_verify_config config;
	char hostname[HOST_NAME_MAX + 1];
	const char *authserv_id = NULL;
	bool verbose = false;
	int opt;

	tool_name = "dkim-verify";
	dkim_verify_config_init(&config);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "vh", long_options,
				  NULL)) != -1) {
		if (tool_resolver_option(&resolver_options, opt, optarg))
			continue;
		switch (opt) {
		case OPT_NOW:
			config.now = (time_t)tool_parse_number(usage, "--now",
				optarg, 1, (unsigned long long)INT32_MAX * 4);
			break;
		case OPT_AUTHSERV_ID:
			authserv_id = optarg;
			break;
		case OPT_DNS_TIMEOUT:
			config.dns_timeout_msecs = 1000 * (unsigned)
				tool_parse_number(usage, "--dns-timeout",
						  optarg, 1,
						  TOOL_DNS_TIMEOUT_MAX_SECS);
			break;
		case OPT_MIN_KEY_BITS:
			config.min_rsa_bits = (unsigned)tool_parse_number(
				usage, "--min-key-bits", optarg,
				DKIM_RSA_MIN_BITS, DKIM_RSA_MAX_BITS);
			break;
		case OPT_MAX_SIGNATURES:
			config.max_signatures = (unsigned)tool_parse_number(
				usage, "--max-signatures", optarg, 1,
				DKIM_MAX_SIGNATURES_LIMIT);
			break;
		case OPT_ACCEPT_PARTIAL_BODY:
			config.body_length = DKIM_BODY_LENGTH_ACCEPT;
			break;
		case OPT_NO_ARC:
			config.arc = false;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			tool_help(usage);
		default:
			tool_bad_option(usage, argv);
		}
	}
	if (argc - optind > 1)
		tool_usage_error(usage, "one message at a time");
	if (authserv_id == NULL) {
		if (gethostname(hostname, sizeof(hostname)) < 0)
			strcpy(hostname, "localhost");
		hostname[sizeof(hostname) - 1] = '\0';
		authserv_id = hostname;
	}

	FILE *input = tool_open_input(optind < argc ? argv[optind] : NULL);
	dkim_resolver *resolver = tool_resolver_create(&resolver_options,
						       usage);
	dkim_verifier *verifier = dkim_verifier_new(&config, resolver);
	verify_stream(verifier, input);
	if (input != stdin)
		fclose(input);

	char *value = dkim_authres_value(verifier, authserv_id,
					 DKIM_AUTHRES_FOLD);
	fputs("Authentication-Results: ", stdout);
	tool_print_lf(stdout, value);
	putchar('\n');
	free(value);
	if (verbose) {
		size_t count = dkim_verifier_signature_count(verifier);
		for (size_t i = 0; i < count; i++)
			print_signature(i, dkim_verifier_signature(verifier, i));
		if (dkim_verifier_skipped_signatures(verifier) > 0)
			printf("skipped: %zu signature%s beyond the limit\n",
			       dkim_verifier_skipped_signatures(verifier),
			       dkim_verifier_skipped_signatures(verifier) == 1 ?
			       "" : "s");
		print_arc(verifier);
		print_author(verifier);
		printf("verdict: %s\n",
		       dkim_result_name(dkim_verifier_verdict(verifier)));
	}

	enum dkim_result verdict = dkim_verifier_verdict(verifier);
	dkim_verifier_free(&verifier);
	dkim_resolver_free(&resolver);
	return verdict == DKIM_RESULT_PASS ? EXIT_SUCCESS :
		verdict == DKIM_RESULT_TEMPERROR ? EXIT_TEMPFAIL : EXIT_FAILURE;
}

/* dkim-sign: add DKIM-Signature fields, and an ARC set, to a message.
 * See dkim-sign(1). */
#include "tool-common.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"dkim-sign (-d DOMAIN -s SELECTOR -k KEYFILE | "
	"--key DOMAIN:SELECTOR:KEYFILE ...) [-c HDR/BODY] "
	"[--headers h1:h2:...] [--oversign h1:...] [-i IDENTITY] "
	"[-x SECONDS] [-l] [--now UNIXTIME] [--allow-unsafe-key] "
	"[--arc-seal DOMAIN:SELECTOR:KEYFILE "
	"(--arc-authres 'AUTHSERV-ID; RESULTS' | --arc-authserv-id ID) "
	"[--dns-table FILE | --resolver ADDR[@PORT]] [--trust-anchor FILE]] "
	"[FILE]";

enum {
	OPT_KEY = TOOL_OPT_FIRST_OWN,
	OPT_HEADERS,
	OPT_OVERSIGN,
	OPT_NOW,
	OPT_ALLOW_UNSAFE_KEY,
	OPT_ARC_SEAL,
	OPT_ARC_AUTHRES,
	OPT_ARC_AUTHSERV_ID,
};

static const struct option long_options[] = {
	{ "domain", required_argument, NULL, 'd' },
	{ "selector", required_argument, NULL, 's' },
	{ "keyfile", required_argument, NULL, 'k' },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "canonicalization", required_argument, NULL, 'c' },
	{ "headers", required_argument, NULL, OPT_HEADERS },
	{ "oversign", required_argument, NULL, OPT_OVERSIGN },
	{ "identity", required_argument, NULL, 'i' },
	{ "expire", required_argument, NULL, 'x' },
	{ "body-length", no_argument, NULL, 'l' },
	{ "now", required_argument, NULL, OPT_NOW },
	{ "allow-unsafe-key", no_argument, NULL, OPT_ALLOW_UNSAFE_KEY },
	{ "arc-seal", required_argument, NULL, OPT_ARC_SEAL },
	{ "arc-authres", required_argument, NULL, OPT_ARC_AUTHRES },
	{ "arc-authserv-id", required_argument, NULL, OPT_ARC_AUTHSERV_ID },
	TOOL_RESOLVER_LONG_OPTIONS,
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

struct key_spec {
	char *domain;
	char *selector;
	char *path;
	dkim_privkey *key;
};

/* The ARC set to add (--arc-seal): key.domain is NULL without one. */
struct arc_request {
	struct key_spec key;
	struct dkim_arc_seal_config config;
	struct tool_resolver_options resolver;
};

/* Splits "a:b:c" into a NULL-terminated list (the string is modified);
 * an empty string gives an empty list. */
static const char **
split_names(char *text)
{
	size_t count = 1;

	for (const char *p = text; *p != '\0'; p++)
		count += *p == ':';
	const char **names = calloc(count + 1, sizeof(*names));
	size_t n = 0;
	for (char *p = text, *next; p != NULL && *p != '\0'; p = next) {
		next = strchr(p, ':');
		if (next != NULL)
			*next++ = '\0';
		if (*p != '\0')
			names[n++] = p;
	}
	return names;
}

static struct key_spec
parse_key_spec(char *spec)
{
	struct key_spec key = { NULL, NULL, NULL, NULL };
	char *first = strchr(spec, ':');
	char *second = first != NULL ? strchr(first + 1, ':') : NULL;

	if (second == NULL || first == spec || second == first + 1 ||
	    second[1] == '\0')
		tool_usage_error(usage, "--key and --arc-seal need "
				 "DOMAIN:SELECTOR:KEYFILE, not '%s'", spec);
	*first = *second = '\0';
	key.domain = spec;
	key.selector = first + 1;
	key.path = second + 1;
	return key;
}

/* The line ending of the input's first line, kept for the output. */
static bool
uses_crlf(const char *message, size_t size)
{
	const char *nl = memchr(message, '\n', size);

	return nl == NULL || (nl > message && nl[-1] == '\r');
}

/* Asks for the ARC set, with the AMS signing what the DKIM signatures
 * sign.  The arriving chain is validated at the signing time. */
static int
add_arc_seal(dkim_signer *signer, struct arc_request *arc,
	     const struct dkim_sign_config *config, dkim_resolver *resolver,
	     struct dkim_verify_config *verify, struct dkim_error *error)
{
	dkim_verify_config_init(verify);
	verify->now = config->timestamp;
	arc->config.domain = arc->key.domain;
	arc->config.selector = arc->key.selector;
	arc->config.key = arc->key.key;
	arc->config.header_canon = config->header_canon;
	arc->config.body_canon = config->body_canon;
	arc->config.headers = config->headers;
	arc->config.oversign = config->oversign;
	arc->config.timestamp = config->timestamp;
	arc->config.resolver = resolver;
	arc->config.verify = verify;
	return dkim_signer_add_arc_seal(signer, &arc->config, error);
}

/* Sealing must wait when the arriving chain could not be validated for a
 * reason that may pass. */
static bool
arc_is_temporary(const dkim_signer *signer)
{
	const struct dkim_arc_result *result;

	dkim_signer_arc(signer, &result, NULL);
	return result->reason == DKIM_REASON_DNS_TIMEOUT ||
		result->reason == DKIM_REASON_DNS_ERROR ||
		result->reason == DKIM_REASON_INTERNAL;
}

static void
report_unsealed(const dkim_signer *signer)
{
	const struct dkim_arc_result *result;
	bool sealed;

	dkim_signer_arc(signer, &result, &sealed);
	if (!sealed)
		tool_error("no ARC set added: %s", result->explanation);
}

/* Loads the keys, signs the message and writes it out.  Every exit path
 * releases what it took, so sanitizer runs see no leaks. */
static int
sign_message(struct key_spec *keys, size_t key_count, struct arc_request *arc,
	     unsigned flags, struct dkim_sign_config *config, const char *path)
{
	struct dkim_error error;
	struct dkim_verify_config verify;
	dkim_signer *signer = NULL;
	dkim_resolver *resolver = NULL;
	char *message = NULL;
	size_t size, loaded = 0;
	int ret = EXIT_FAILURE;

	/* Every key is loaded before the message is read: a bad key fails
	 * fast. */
	for (; loaded < key_count; loaded++) {
		if (dkim_privkey_load(keys[loaded].path, flags,
				      &keys[loaded].key, &error) < 0) {
			tool_error("%s%s", error.text,
				   tool_unsafe_key_hint(&error));
			goto out;
		}
	}
	if (arc->key.domain != NULL) {
		if (dkim_privkey_load(arc->key.path, flags, &arc->key.key,
				      &error) < 0) {
			tool_error("%s%s", error.text,
				   tool_unsafe_key_hint(&error));
			goto out;
		}
		resolver = tool_resolver_create(&arc->resolver, usage);
	}

	FILE *input = tool_open_input(path);
	message = tool_read_all(input, &size);
	if (input != stdin)
		fclose(input);

	signer = dkim_signer_new();
	for (size_t i = 0; i < key_count; i++) {
		config->domain = keys[i].domain;
		config->selector = keys[i].selector;
		config->key = keys[i].key;
		if (dkim_signer_add(signer, config, &error) < 0) {
			tool_error("%s", error.text);
			ret = EXIT_USAGE;
			goto out;
		}
	}
	if (arc->key.domain != NULL &&
	    add_arc_seal(signer, arc, config, resolver, &verify, &error) < 0) {
		tool_error("%s", error.text);
		ret = EXIT_USAGE;
		goto out;
	}
	dkim_signer_feed(signer, message, size);
	if (dkim_signer_finish(signer, &error) < 0) {
		tool_error("cannot sign: %s", error.text);
		if (arc_is_temporary(signer))
			ret = EXIT_TEMPFAIL;
		goto out;
	}
	if (arc->key.domain != NULL)
		report_unsealed(signer);

	const char *fields = dkim_signer_fields(signer);
	if (uses_crlf(message, size))
		fputs(fields, stdout);
	else
		tool_print_lf(stdout, fields);
	fwrite(message, 1, size, stdout);
	if (fflush(stdout) != 0)
		tool_error("cannot write the signed message");
	else
		ret = EXIT_SUCCESS;
out:
	dkim_signer_free(&signer);
	dkim_resolver_free(&resolver);
	for (size_t i = 0; i < loaded; i++)
		dkim_privkey_free(&keys[i].key);
	dkim_privkey_free(&arc->key.key);
	free(message);
	return ret;
}

int
main(int argc, char *argv[])
{
	struct key_spec keys[32], single = { NULL, NULL, NULL, NULL };
	struct arc_request arc = { .key = { NULL, NULL, NULL, NULL } };
	size_t key_count = 0;
	struct dkim_sign_config config;
	const char **headers = NULL, **oversign = NULL;
	unsigned flags = 0;
	int opt;

	tool_name = "dkim-sign";
	dkim_sign_config_init(&config);
	dkim_arc_seal_config_init(&arc.config);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "d:s:k:c:i:x:lh", long_options,
				  NULL)) != -1) {
		if (tool_resolver_option(&arc.resolver, opt, optarg))
			continue;
		switch (opt) {
		case 'd':
			single.domain = optarg;
			break;
		case 's':
			single.selector = optarg;
			break;
		case 'k':
			single.path = optarg;
			break;
		case OPT_KEY:
			if (key_count == sizeof(keys) / sizeof(keys[0]))
				tool_usage_error(usage, "too many --key options");
			keys[key_count++] = parse_key_spec(optarg);
			break;
		case 'c':
			if (!dkim_canon_parse(optarg, &config.header_canon,
					      &config.body_canon))
				tool_usage_error(usage, "-c needs simple or "
						 "relaxed, as HDR/BODY");
			break;
		case OPT_HEADERS:
			headers = split_names(optarg);
			if (headers[0] == NULL)
				tool_usage_error(usage, "--headers is empty");
			break;
		case OPT_OVERSIGN:
			oversign = split_names(optarg);
			break;
		case 'i':
			config.identity = optarg;
			break;
		case 'x':
			config.expire_secs = (unsigned long)tool_parse_number(
				usage, "-x", optarg, 1, 10UL * 365 * 86400);
			break;
		case 'l':
			config.body_length = true;
			break;
		case OPT_NOW:
			config.timestamp = (time_t)tool_parse_number(usage,
				"--now", optarg, 1,
				(unsigned long long)INT32_MAX * 4);
			break;
		case OPT_ALLOW_UNSAFE_KEY:
			flags |= DKIM_PRIVKEY_ALLOW_UNSAFE;
			break;
		case OPT_ARC_SEAL:
			arc.key = parse_key_spec(optarg);
			break;
		case OPT_ARC_AUTHRES:
			arc.config.authres = optarg;
			break;
		case OPT_ARC_AUTHSERV_ID:
			arc.config.authserv_id = optarg;
			break;
		case 'h':
			tool_help(usage);
		default:
			tool_bad_option(usage, argv);
		}
	}
	if (single.domain != NULL || single.selector != NULL ||
	    single.path != NULL) {
		if (single.domain == NULL || single.selector == NULL ||
		    single.path == NULL)
			tool_usage_error(usage, "-d, -s and -k go together");
		if (key_count == sizeof(keys) / sizeof(keys[0]))
			tool_usage_error(usage, "too many keys");
		keys[key_count++] = single;
	}
	if (key_count == 0 && arc.key.domain == NULL)
		tool_usage_error(usage, "no signing key given");
	if (arc.key.domain != NULL &&
	    (arc.config.authres == NULL) == (arc.config.authserv_id == NULL))
		tool_usage_error(usage, "--arc-seal needs either --arc-authres "
				 "or --arc-authserv-id");
	if (arc.key.domain == NULL &&
	    (arc.config.authres != NULL || arc.config.authserv_id != NULL ||
	     arc.resolver.table != NULL || arc.resolver.forward != NULL ||
	     arc.resolver.trust_anchor != NULL))
		tool_usage_error(usage, "the ARC and DNS options go with "
				 "--arc-seal");
	if (argc - optind > 1)
		tool_usage_error(usage, "one message at a time");
	config.headers = headers;
	config.oversign = oversign;

	int ret = sign_message(keys, key_count, &arc, flags, &config,
			       optind < argc ? argv[optind] : NULL);
	free(headers);
	free(oversign);
	return ret;
}

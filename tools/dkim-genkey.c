/* dkim-genkey: make a DKIM key pair and the DNS record that publishes it,
 * both as a zone-file line (split into quoted strings of at most 255
 * bytes) and as the single value web DNS panels want.  See
 * dkim-genkey(1). */
#include "tool-common.h"
#include "tool-keygen.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
	"dkim-genkey -d DOMAIN -s SELECTOR [-t rsa|ed25519] [-b BITS] "
	"[-D DIR] [--force]";

static const struct option long_options[] = {
	{ "domain", required_argument, NULL, 'd' },
	{ "selector", required_argument, NULL, 's' },
	{ "type", required_argument, NULL, 't' },
	{ "bits", required_argument, NULL, 'b' },
	{ "directory", required_argument, NULL, 'D' },
	{ "force", no_argument, NULL, 'f' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/* Creates the file without following links or replacing one unless
 * forced, with its final mode from the start. */
static void
write_file(const char *path, const char *text, mode_t mode, bool force)
{
	int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
		(force ? O_TRUNC : O_EXCL);
	int fd = open(path, flags, mode);
	size_t len = strlen(text);

	if (fd < 0) {
		tool_error("cannot create %s: %s%s", path, strerror(errno),
			   errno == EEXIST ? " (use --force to replace it)" : "");
		exit(EXIT_FAILURE);
	}
	if (fchmod(fd, mode) < 0 || write(fd, text, len) != (ssize_t)len ||
	    close(fd) < 0) {
		tool_error("cannot write %s: %s", path, strerror(errno));
		exit(EXIT_FAILURE);
	}
}

int
main(int argc, char *argv[])
{
	const char *domain = NULL, *selector = NULL, *dir = ".";
	bool ed25519 = false, force = false, bits_given = false;
	unsigned bits = TOOL_KEYGEN_DEFAULT_RSA_BITS;
	struct dkim_error error;
	int opt;

	tool_name = "dkim-genkey";
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "d:s:t:b:D:fh", long_options,
				  NULL)) != -1) {
		switch (opt) {
		case 'd':
			domain = optarg;
			break;
		case 's':
			selector = optarg;
			break;
		case 't':
			if (strcasecmp(optarg, "ed25519") == 0)
				ed25519 = true;
			else if (strcasecmp(optarg, "rsa") != 0)
				tool_usage_error(usage, "-t is rsa or ed25519");
			break;
		case 'b':
			bits = (unsigned)tool_parse_number(usage, "-b", optarg,
							   DKIM_RSA_MIN_BITS,
							   DKIM_RSA_MAX_BITS);
			bits_given = true;
			break;
		case 'D':
			dir = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			tool_help(usage);
		default:
			tool_bad_option(usage, argv);
		}
	}
	tool_no_operands(usage, argc, argv);
	/* The selector also names the files: no path may sneak in. */
	tool_check_key_name(usage, domain, selector);
	if (ed25519 && bits_given)
		tool_usage_error(usage, "-b applies to RSA keys only");

	char *pem = tool_keygen_pem(ed25519, bits);
	dkim_privkey *key = NULL;
	if (pem == NULL ||
	    dkim_privkey_parse(pem, strlen(pem), &key, &error) < 0) {
		tool_error("key generation failed");
		return EXIT_FAILURE;
	}
	char *record = dkim_privkey_public_record(key);
	char *line = tool_zone_line(domain, selector, record);
	char *txt = malloc(strlen(line) + 2);
	sprintf(txt, "%s\n", line);

	char private_path[4096], txt_path[4096];
	tool_format_path(private_path, sizeof(private_path), "%s/%s.private",
			 dir, selector);
	tool_format_path(txt_path, sizeof(txt_path), "%s/%s.txt", dir,
			 selector);
	write_file(private_path, pem, 0600, force);
	write_file(txt_path, txt, 0644, force);

	printf("Private key: %s (mode 0600; the signing process needs read "
	       "access)\n\n", private_path);
	printf("Zone file line (also in %s):\n%s\n\n", txt_path, line);
	printf("For a DNS web panel, one TXT record:\n"
	       "  name:  %s._domainkey   (full name %s._domainkey.%s)\n"
	       "  value: %s\n", selector, selector, domain, record);

	tool_keygen_free_pem(&pem);
	free(txt);
	free(line);
	free(record);
	dkim_privkey_free(&key);
	return EXIT_SUCCESS;
}

/* dkim-bench: the benchmark runner of ../shared/bench (see its README,
 * "Runner contract"):
 *
 *   dkim-bench verify CORPUS CLASS [--limit N]
 *   dkim-bench sign   CORPUS CLASS [--limit N] [--out DIR]
 *
 * Messages are loaded first; only the loop over them is timed.  Verify
 * answers key queries from the corpus key table held as TXT text, so
 * every message still parses and imports its key; sign loads the private
 * key once, as a mail server does. */
#include "tool-common.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char usage[] =
	"dkim-bench verify|sign CORPUS CLASS [--limit N] [--out DIR]";

#define EXIT_UNSUPPORTED 2

struct text_file {
	char *name;
	char *data;
	size_t size;
};

struct key_entry {
	char *name;
	char *value;
};

static struct key_entry *key_table;
static size_t key_count;

static char *
read_path(const char *path, size_t *size_r)
{
	FILE *file = fopen(path, "rb");

	if (file == NULL) {
		tool_error("cannot open %s: %s", path, strerror(errno));
		exit(EXIT_FAILURE);
	}
	char *data = tool_read_all(file, size_r);
	fclose(file);
	data = realloc(data, *size_r + 1);
	data[*size_r] = '\0';
	return data;
}

/* class.txt: key=value lines; unknown keys are ignored. */
static char *
class_value(const char *class_txt, const char *key)
{
	size_t key_len = strlen(key);

	for (const char *line = class_txt; *line != '\0';) {
		const char *eol = strchr(line, '\n');
		size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
		if (len > key_len && strncmp(line, key, key_len) == 0 &&
		    line[key_len] == '=')
			return strndup(line + key_len + 1, len - key_len - 1);
		line += len + (eol != NULL);
	}
	return NULL;
}

static void
load_key_table(const char *corpus)
{
	char path[4096];
	size_t size;

	tool_format_path(path, sizeof(path), "%s/keys.txt", corpus);
	char *text = read_path(path, &size);
	for (char *line = strtok(text, "\n"); line != NULL;
	     line = strtok(NULL, "\n")) {
		char *tab = strchr(line, '\t');
		if (tab == NULL)
			continue;
		*tab = '\0';
		key_table = realloc(key_table,
				    (key_count + 1) * sizeof(*key_table));
		key_table[key_count].name = strdup(line);
		key_table[key_count].value = strdup(tab + 1);
		key_count++;
	}
	free(text);
}

static enum dkim_dns_status
table_lookup(void *context, const char *qname, struct dkim_dns_answer *answer)
{
	(void)context;
	for (size_t i = 0; i < key_count; i++) {
		if (strcasecmp(key_table[i].name, qname) == 0) {
			dkim_dns_answer_add(answer, key_table[i].value,
					    strlen(key_table[i].value));
			return DKIM_DNS_FOUND;
		}
	}
	return DKIM_DNS_NOT_FOUND;
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static struct text_file *
load_messages(const char *dir, size_t limit, size_t *count_r)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t count = 0;
	struct dirent *entry;

	if (d == NULL) {
		tool_error("cannot open %s: %s", dir, strerror(errno));
		exit(EXIT_FAILURE);
	}
	while ((entry = readdir(d)) != NULL) {
		size_t len = strlen(entry->d_name);
		if (len > 4 && strcmp(entry->d_name + len - 4, ".eml") == 0) {
			names = realloc(names, (count + 1) * sizeof(*names));
			names[count++] = strdup(entry->d_name);
		}
	}
	closedir(d);
	qsort(names, count, sizeof(*names), compare_names);
	if (limit < count) {
		for (size_t i = limit; i < count; i++)
			free(names[i]);
		count = limit;
	}

	struct text_file *files = calloc(count + 1, sizeof(*files));
	for (size_t i = 0; i < count; i++) {
		char path[4096];
		tool_format_path(path, sizeof(path), "%s/%s", dir, names[i]);
		files[i].name = names[i];
		files[i].data = read_path(path, &files[i].size);
	}
	free(names);
	*count_r = count;
	return files;
}

static double
seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t
verify_all(const struct text_file *messages, size_t count, double *secs_r)
{
	struct dkim_verify_config config;
	dkim_resolver *resolver = dkim_resolver_new_custom(table_lookup, NULL);
	size_t passed = 0;

	dkim_verify_config_init(&config);
	double start = seconds_now();
	for (size_t i = 0; i < count; i++) {
		dkim_verifier *verifier = dkim_verifier_new(&config, resolver);
		dkim_verifier_feed(verifier, messages[i].data, messages[i].size);
		dkim_verifier_finish(verifier);
		if (dkim_verifier_verdict(verifier) == DKIM_RESULT_PASS)
			passed++;
		dkim_verifier_free(&verifier);
	}
	*secs_r = seconds_now() - start;
	dkim_resolver_free(&resolver);
	return passed;
}

/* Drops the DKIM-Signature fields (with their continuation lines). */
static void
strip_signatures(struct text_file *message)
{
	char *out = message->data, *p = message->data;
	char *end = message->data + message->size;
	bool dropping = false;

	while (p < end) {
		char *eol = memchr(p, '\n', (size_t)(end - p));
		char *next = eol != NULL ? eol + 1 : end;
		size_t len = (size_t)(next - p);

		if (len <= 2 && (p[0] == '\n' || p[0] == '\r')) {
			memmove(out, p, (size_t)(end - p));
			out += end - p;
			break; /* the body starts here */
		}
		if (*p != ' ' && *p != '\t')
			dropping = strncasecmp(p, "DKIM-Signature:", 15) == 0;
		if (!dropping) {
			memmove(out, p, len);
			out += len;
		}
		p = next;
	}
	message->size = (size_t)(out - message->data);
}

static const char **
split_headers(char *list)
{
	size_t count = 0;
	const char **names = calloc(strlen(list) / 2 + 2, sizeof(*names));

	for (char *name = strtok(list, ":"); name != NULL;
	     name = strtok(NULL, ":"))
		names[count++] = name;
	return names;
}

int
main(int argc, char *argv[])
{
	size_t limit = SIZE_MAX;
	const char *out_dir = NULL;

	tool_name = "dkim-bench";
	if (argc == 2 && strcmp(argv[1], "--help") == 0)
		tool_help(usage);
	if (argc < 4)
		tool_usage_error(usage, "missing arguments");
	const char *mode = argv[1], *corpus = argv[2], *class = argv[3];
	bool signing = strcmp(mode, "sign") == 0;
	if (!signing && strcmp(mode, "verify") != 0)
		tool_usage_error(usage, "mode is verify or sign, not %s", mode);
	for (int i = 4; i < argc; i++) {
		bool has_value = i + 1 < argc;

		if (strcmp(argv[i], "--limit") == 0 && has_value)
			limit = (size_t)tool_parse_number(usage, "--limit",
							  argv[++i], 1,
							  SIZE_MAX / 2);
		else if (strcmp(argv[i], "--out") == 0 && has_value && signing)
			out_dir = argv[++i];
		else
			tool_usage_error(usage, "unexpected argument %s%s",
					 argv[i], has_value ? "" :
					 " (missing value?)");
	}

	char path[4096];
	size_t size, count;
	tool_format_path(path, sizeof(path), "%s/%s/class.txt", corpus, class);
	char *class_txt = read_path(path, &size);
	char *algorithm = class_value(class_txt, "algorithm");
	char *canon = class_value(class_txt, "canonicalization");
	struct dkim_sign_config config;
	dkim_sign_config_init(&config);
	if (algorithm == NULL || canon == NULL ||
	    (strcmp(algorithm, "rsa-sha256") != 0 &&
	     strcmp(algorithm, "ed25519-sha256") != 0) ||
	    !dkim_canon_parse(canon, &config.header_canon, &config.body_canon)) {
		printf("unsupported: %s %s\n", algorithm ? algorithm : "?",
		       canon ? canon : "?");
		return EXIT_UNSUPPORTED;
	}

	tool_format_path(path, sizeof(path), "%s/%s", corpus, class);
	struct text_file *messages = load_messages(path, limit, &count);
	size_t done;
	double secs;

	if (!signing) {
		load_key_table(corpus);
		done = verify_all(messages, count, &secs);
		printf("verified %zu of %zu in %.6f seconds\n", done, count,
		       secs);
		return EXIT_SUCCESS;
	}

	struct dkim_error error;
	dkim_privkey *key;
	char *key_name = class_value(class_txt, "private_key");
	char *header_list = class_value(class_txt, "headers");
	const char *no_oversign[] = { NULL };
	tool_format_path(path, sizeof(path), "%s/%s", corpus,
			 key_name != NULL ? key_name : "");
	/* The corpus keys are shared test data, not secrets. */
	if (dkim_privkey_load(path, DKIM_PRIVKEY_ALLOW_UNSAFE, &key,
			      &error) < 0) {
		tool_error("%s", error.text);
		return EXIT_FAILURE;
	}
	config.domain = class_value(class_txt, "domain");
	config.selector = class_value(class_txt, "selector");
	config.key = key;
	config.headers = header_list != NULL ? split_headers(header_list) : NULL;
	config.oversign = no_oversign;
	for (size_t i = 0; i < count; i++)
		strip_signatures(&messages[i]);

	char **fields = calloc(count + 1, sizeof(*fields));
	done = 0;
	double start = seconds_now();
	for (size_t i = 0; i < count; i++) {
		dkim_signer *signer = dkim_signer_new();
		if (dkim_signer_add(signer, &config, &error) == 0) {
			dkim_signer_feed(signer, messages[i].data,
					 messages[i].size);
			if (dkim_signer_finish(signer, &error) == 0) {
				fields[i] = strdup(dkim_signer_fields(signer));
				done++;
			}
		}
		dkim_signer_free(&signer);
	}
	secs = seconds_now() - start;

	for (size_t i = 0; out_dir != NULL && i < count; i++) {
		tool_format_path(path, sizeof(path), "%s/%s", out_dir, messages[i].name);
		if (fields[i] == NULL)
			continue; /* not signed: counted as a failure above */
		FILE *file = fopen(path, "wb");
		if (file == NULL || fputs(fields[i], file) < 0 ||
		    fwrite(messages[i].data, 1, messages[i].size, file) !=
		    messages[i].size || fclose(file) != 0) {
			tool_error("cannot write %s: %s", path, strerror(errno));
			return EXIT_FAILURE;
		}
	}
	printf("signed %zu of %zu in %.6f seconds\n", done, count, secs);
	return EXIT_SUCCESS;
}

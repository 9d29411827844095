/* table-bench: what choosing the keys costs the submission plugin per
 * message, with the tables in files and with the tables in a dict whose
 * answers are all in the process's cache (the warm cache of
 * keytable/dkim-keyed-table.h): the same steps as
 * dkim_message_choose_from_tables(), without Dovecot and without signing.
 *
 * usage: table-bench KEYFILE [MESSAGES]
 *
 * KEYFILE is a private key (PEM).  The tables name it for example.com;
 * the From addresses cycle through 50 users of that domain.  Prints the
 * time per message of each variant.  Built on demand: make bench/table-bench.
 * See doc/performance.md. */
#include "dkim-keyed-table.h"
#include "dkim-keytable-cache.h"
#include "dkim-util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SENDERS 50
#define DEFAULT_MESSAGES 200000

struct memory_store {
	char *key_value;
	unsigned asked;
};

static int
memory_lookup(void *context, const char *key, const char **value_r,
	      struct dkim_error *error)
{
	struct memory_store *store = context;

	(void)error;
	store->asked++;
	if (strcmp(key, DKIM_KEYED_SIGNING_PREFIX "example.com") == 0) {
		*value_r = "bench._domainkey.example.com";
		return 1;
	}
	if (strcmp(key, DKIM_KEYED_KEY_PREFIX "bench._domainkey.example.com") == 0) {
		*value_r = store->key_value;
		return 1;
	}
	return 0;
}

static double
now_usecs(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void
write_file(const char *path, const char *text)
{
	FILE *file = fopen(path, "w");

	if (file == NULL || fputs(text, file) < 0 || fclose(file) != 0) {
		perror(path);
		exit(1);
	}
}

/* One message's key choice; exits on any failure (the bench is not the
 * place to find out why). */
static void
choose(struct dkim_keytable_cache *keys, const struct dkim_keyed_reader *dict,
       const char *keytable, const char *signingtable, const char *address)
{
	const struct dkim_signingtable *signing;
	const struct dkim_keytable *keytab;
	struct dkim_signingtable *dict_signing = NULL;
	struct dkim_keytable *dict_keys = NULL;
	struct dkim_key_choice *choices;
	const dkim_privkey *privkey;
	struct dkim_error error;
	size_t count;
	bool loaded;
	int ret;

	if (dict != NULL) {
		ret = dkim_keyed_signingtable(dict, address, false,
					      &dict_signing, &error);
		if (ret == 0)
			ret = dkim_keyed_keytable(dict, dict_signing, address,
						  false, &dict_keys, &error);
		signing = dict_signing;
		keytab = dict_keys;
	} else {
		ret = dkim_keytable_cache_signingtable(keys, signingtable,
						       DKIM_TABLE_FILE,
						       &signing, &loaded,
						       &error);
		if (ret == 0)
			ret = dkim_keytable_cache_keytable(keys, keytable,
							   &keytab, &error);
	}
	if (ret == 0 &&
	    (dkim_keytable_select(signing, keytab, address, false, &choices,
				  &count, &error) != DKIM_KEYTABLE_SELECT_OK ||
	     count != 1))
		ret = -1;
	if (ret == 0) {
		ret = dkim_keytable_cache_privkey(keys, choices[0].key,
						  choices[0].key_is_file, 0,
						  &privkey, &error);
		dkim_key_choices_free(&choices, count);
	}
	if (ret < 0) {
		fprintf(stderr, "table-bench: %s\n", error.text);
		exit(1);
	}
	dkim_signingtable_free(&dict_signing);
	dkim_keytable_free(&dict_keys);
	dkim_keytable_cache_release(keys);
}

int
main(int argc, char *argv[])
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: table-bench KEYFILE [MESSAGES]\n");
		return 64;
	}
	unsigned messages = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) :
		DEFAULT_MESSAGES;
	char *key = realpath(argv[1], NULL);
	FILE *file = key == NULL ? NULL : fopen(key, "r");
	char pem[16384];
	size_t len = file == NULL ? 0 : fread(pem, 1, sizeof(pem) - 1, file);

	if (file == NULL || len == 0 || messages == 0) {
		fprintf(stderr, "table-bench: cannot read %s\n", argv[1]);
		return 66;
	}
	fclose(file);
	pem[len] = '\0';

	char directory[] = "/tmp/table-bench.XXXXXX";
	if (mkdtemp(directory) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	char *keytable = dkim_strdup_printf("%s/KeyTable", directory);
	char *signingtable = dkim_strdup_printf("%s/SigningTable", directory);
	char *line = dkim_strdup_printf("bench._domainkey.example.com "
					"example.com:bench:%s\n", key);
	write_file(keytable, line);
	write_file(signingtable, "example.com bench._domainkey.example.com\n");

	struct memory_store memory = {
		.key_value = dkim_strdup_printf("example.com:bench:%s", pem),
	};
	struct dkim_keyed_store store = {
		.name = "dict:bench", .lookup = memory_lookup,
		.context = &memory,
	};
	struct dkim_keyed_cache *dict_cache = dkim_keyed_cache_new();
	struct dkim_keyed_reader reader = {
		.cache = dict_cache, .store = &store, .now = time(NULL),
		.ttl_secs = 3600,
	};
	struct dkim_keytable_cache *keys = dkim_keytable_cache_new();
	char address[64];

	/* both warm: tables and key loaded, every sender looked up */
	for (unsigned i = 0; i < SENDERS; i++) {
		snprintf(address, sizeof(address), "user%u@example.com", i);
		choose(keys, NULL, keytable, signingtable, address);
		choose(keys, &reader, NULL, NULL, address);
	}
	unsigned asked = memory.asked;
	for (int dict = 0; dict < 2; dict++) {
		double start = now_usecs();

		for (unsigned i = 0; i < messages; i++) {
			snprintf(address, sizeof(address), "user%u@example.com",
				 i % SENDERS);
			choose(keys, dict ? &reader : NULL, keytable,
			       signingtable, address);
		}
		printf("%s: %.2f us per message\n", dict ?
		       "tables in a dict, warm cache" : "tables in files",
		       (now_usecs() - start) / messages);
	}
	if (memory.asked != asked) {
		fprintf(stderr, "table-bench: the cache was not warm\n");
		return 1;
	}
	unlink(keytable);
	unlink(signingtable);
	rmdir(directory);
	dkim_keytable_cache_free(&keys);
	dkim_keyed_cache_free(&dict_cache);
	free(memory.key_value);
	free(line);
	free(keytable);
	free(signingtable);
	free(key);
	return 0;
}

/* The per-process cache of tables and keys: loaded once, reloaded when the
 * file changes (rewrite, rename over it, chmod), errors never hidden by an
 * older cached version. */
#include "dkim-keytable-cache.h"
#include "tap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Two fixed Ed25519 test keys (PKCS#8 PEM) and one as bare base64 DER. */
static const char key_a[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MC4CAQAwBQYDK2VwBCIEIEQdgHO5nw9QTLhKw9mE6Hgax6hYSboxi1Pu4LkDep/2\n"
	"-----END PRIVATE KEY-----\n";
static const char key_b[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MC4CAQAwBQYDK2VwBCIEIKwzYSisRcHw5DhX2NF8YtVJuVfSIiQSXFbfOMhsh+4g\n"
	"-----END PRIVATE KEY-----\n";
static const char key_inline_der[] =
	"MC4CAQAwBQYDK2VwBCIEIHEGfqJtCjw7fjLrVJeTfU7x+b7tUpa6LRLYD36v8w1g";

static char directory[] = "/tmp/test-keytable-cache.XXXXXX";

/* Two buffers used in turn, so rename(path_of(a), path_of(b)) works. */
static const char *
path_of(const char *name)
{
	static char paths[2][512];
	static unsigned next;
	char *path = paths[next++ % 2];

	snprintf(path, sizeof(paths[0]), "%s/%s", directory, name);
	return path;
}

static void
write_file(const char *name, const char *text, mode_t mode)
{
	const char *path = path_of(name);
	FILE *file = fopen(path, "w");

	if (file == NULL || fputs(text, file) < 0 || fclose(file) != 0) {
		perror(path);
		exit(2);
	}
	chmod(path, mode);
}

/* The public record identifies which key was loaded. */
static char *
record_of(const dkim_privkey *key)
{
	return key == NULL ? strdup("(none)") : dkim_privkey_public_record(key);
}

static void
test_keys(struct dkim_keytable_cache *cache)
{
	const dkim_privkey *key1 = NULL, *key2 = NULL;
	dkim_privkey *reference = NULL;
	struct dkim_error error;

	write_file("a.private", key_a, 0600);
	write_file("b.private", key_b, 0600);
	dkim_privkey_load(path_of("a.private"), 0, &reference, NULL);
	char *record_a = record_of(reference);
	dkim_privkey_free(&reference);

	unsigned loads = dkim_keytable_cache_load_count(cache);
	tap_ok(dkim_keytable_cache_privkey(cache, path_of("k.private"), true,
					   0, &key1, &error) < 0 &&
	       strstr(error.text, "No such file") != NULL,
	       "missing key file: error with the reason");
	rename(path_of("a.private"), path_of("k.private"));
	tap_ok(dkim_keytable_cache_privkey(cache, path_of("k.private"), true,
					   0, &key1, &error) == 0,
	       "key loads");
	tap_ok(dkim_keytable_cache_privkey(cache, path_of("k.private"), true,
					   0, &key2, &error) == 0 &&
	       key2 == key1, "unchanged file: the same loaded key");
	tap_is_int(dkim_keytable_cache_load_count(cache) - loads, 1,
		   "loaded once");
	char *record = record_of(key1);
	tap_is_str(record, record_a, "it is key A");
	free(record);

	/* key rotation as administrators do it: a new file renamed over */
	rename(path_of("b.private"), path_of("k.private"));
	tap_ok(dkim_keytable_cache_privkey(cache, path_of("k.private"), true,
					   0, &key2, &error) == 0 &&
	       key2 != key1, "replaced file: reloaded");
	record = record_of(key1);
	tap_is_str(record, record_a,
		   "the old key stays usable until release");
	free(record);
	dkim_keytable_cache_release(cache);

	chmod(path_of("k.private"), 0640);
	tap_ok(dkim_keytable_cache_privkey(cache, path_of("k.private"), true,
					   0, &key1, &error) < 0 &&
	       strstr(error.text, "group or others") != NULL,
	       "chmod g+r is noticed and the key refused");
	tap_ok(dkim_keytable_cache_privkey(cache, path_of("k.private"), true,
					   DKIM_PRIVKEY_ALLOW_UNSAFE, &key1,
					   &error) == 0,
	       "unless unsafe keys are allowed");
	chmod(path_of("k.private"), 0600);
	tap_ok(dkim_keytable_cache_privkey(cache, path_of("k.private"), true,
					   0, &key2, &error) == 0,
	       "chmod back: accepted again");

	write_file("k.private", "garbage\n", 0600);
	tap_ok(dkim_keytable_cache_privkey(cache, path_of("k.private"), true,
					   0, &key1, &error) < 0,
	       "a broken replacement is an error, not the old key");
	dkim_keytable_cache_release(cache);

	tap_ok(dkim_keytable_cache_privkey(cache, key_inline_der, false, 0,
					   &key1, &error) == 0 &&
	       dkim_privkey_type(key1) == DKIM_KEY_ED25519,
	       "inline base64 DER key");
	loads = dkim_keytable_cache_load_count(cache);
	tap_ok(dkim_keytable_cache_privkey(cache, key_inline_der, false, 0,
					   &key2, &error) == 0 && key2 == key1 &&
	       dkim_keytable_cache_load_count(cache) == loads,
	       "inline key parsed once");
	tap_ok(dkim_keytable_cache_privkey(cache, "bm90IGEga2V5", false, 0,
					   &key1, &error) < 0 &&
	       strstr(error.text, "inline") != NULL,
	       "inline garbage is explained");
	free(record_a);
}

static void
test_tables(struct dkim_keytable_cache *cache)
{
	const struct dkim_keytable *kt1, *kt2;
	const struct dkim_signingtable *st1, *st2;
	struct dkim_error error;
	bool loaded;

	write_file("KeyTable", "k example.com:s1:/k1\n", 0644);
	tap_ok(dkim_keytable_cache_keytable(cache, path_of("KeyTable"), &kt1,
					    &error) == 0 &&
	       strcmp(dkim_keytable_lookup(kt1, "k")->selector, "s1") == 0,
	       "KeyTable loads");
	tap_ok(dkim_keytable_cache_keytable(cache, path_of("KeyTable"), &kt2,
					    &error) == 0 && kt2 == kt1,
	       "KeyTable cached");
	/* Same size, so only the timestamps tell: push mtime forward. */
	write_file("KeyTable", "k example.com:s2:/k1\n", 0644);
	struct timespec times[2] = { { 0, UTIME_OMIT }, { 2000000000, 0 } };
	utimensat(AT_FDCWD, path_of("KeyTable"), times, 0);
	tap_ok(dkim_keytable_cache_keytable(cache, path_of("KeyTable"), &kt2,
					    &error) == 0 &&
	       strcmp(dkim_keytable_lookup(kt2, "k")->selector, "s2") == 0,
	       "edited in place: reloaded");
	tap_ok(strcmp(dkim_keytable_lookup(kt1, "k")->selector, "s1") == 0,
	       "the old table stays readable until release");
	dkim_keytable_cache_release(cache);

	write_file("SigningTable", "*@example.com k\n", 0644);
	tap_ok(dkim_keytable_cache_signingtable(cache, path_of("SigningTable"),
						DKIM_TABLE_REFILE, &st1,
						&loaded, &error) == 0 &&
	       loaded &&
	       dkim_signingtable_match(st1, "a@example.com", false, NULL, 0) == 1,
	       "refile SigningTable loads");
	tap_ok(dkim_keytable_cache_signingtable(cache, path_of("SigningTable"),
						DKIM_TABLE_REFILE, &st2,
						&loaded, &error) == 0 &&
	       st2 == st1 && !loaded,
	       "cached: not loaded again (its warnings were reported)");
	tap_ok(dkim_keytable_cache_signingtable(cache, path_of("SigningTable"),
						DKIM_TABLE_FILE, &st2,
						&loaded, &error) == 0 &&
	       st2 != st1 && loaded &&
	       dkim_signingtable_match(st2, "a@example.com", false, NULL, 0) == 0,
	       "the same file as file: is a different table");
	unlink(path_of("SigningTable"));
	tap_ok(dkim_keytable_cache_signingtable(cache, path_of("SigningTable"),
						DKIM_TABLE_REFILE, &st1,
						&loaded, &error) < 0,
	       "a removed table is an error");
	write_file("Bad", "k example.com\n", 0644);
	tap_ok(dkim_keytable_cache_keytable(cache, path_of("Bad"), &kt1,
					    &error) < 0 &&
	       strstr(error.text, "line 1") != NULL,
	       "a malformed table's error is passed on");
}

int
main(void)
{
	if (mkdtemp(directory) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	struct dkim_keytable_cache *cache = dkim_keytable_cache_new();
	test_keys(cache);
	test_tables(cache);
	dkim_keytable_cache_free(&cache);
	tap_ok(cache == NULL, "free clears the pointer");

	const char *names[] = { "k.private", "KeyTable", "Bad" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(path_of(names[i]));
	rmdir(directory);
	return tap_done();
}

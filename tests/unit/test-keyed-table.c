/* KeyTable and SigningTable from a key-value store (dkim-keyed-table.h):
 * the lookup order, the value formats, and the TTL cache (a changed entry
 * is used after at most the TTL, a store that fails is never covered up
 * by an expired entry), against a store that is a plain array. */
#include "dkim-keyed-table.h"
#include "tap.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENTRIES 32

/* The store: key -> value, and what it was asked. */
struct test_store {
	const char *keys[MAX_ENTRIES];
	const char *values[MAX_ENTRIES];
	bool failing;
	char asked[4096];	/* the keys asked for, ' '-separated */
};

static void
store_set(struct test_store *store, const char *key, const char *value)
{
	for (size_t i = 0; i < MAX_ENTRIES; i++) {
		if (store->keys[i] == NULL || strcmp(store->keys[i], key) == 0) {
			store->keys[i] = key;
			store->values[i] = value;
			return;
		}
	}
	abort();
}

static int
store_lookup(void *context, const char *key, const char **value_r,
	     struct dkim_error *error)
{
	struct test_store *store = context;
	size_t used = strlen(store->asked);

	snprintf(store->asked + used, sizeof(store->asked) - used, "%s%s",
		 used > 0 ? " " : "", key);
	if (store->failing) {
		dkim_error_set(error, "connection refused");
		return -1;
	}
	for (size_t i = 0; i < MAX_ENTRIES && store->keys[i] != NULL; i++) {
		if (strcmp(store->keys[i], key) == 0 &&
		    store->values[i] != NULL) {
			*value_r = store->values[i];
			return 1;
		}
	}
	return 0;
}

/* The keys dkim_dict_signing_keys() gives, ' '-separated. */
static const char *
lookup_order(const char *address)
{
	static char text[1024];
	char **keys = dkim_dict_signing_keys(address);

	text[0] = '\0';
	for (char **key = keys; *key != NULL; key++) {
		size_t used = strlen(text);
		snprintf(text + used, sizeof(text) - used, "%s%s",
			 key == keys ? "" : " ", *key);
	}
	dkim_table_strings_free(&keys);
	return text;
}

static void
test_lookup_order(void)
{
	tap_is_str(lookup_order("Alice@Mail.Example.COM"),
		   "alice@mail.example.com mail.example.com example.com com *",
		   "address, domain, each parent domain, *, lowercase");
	tap_is_str(lookup_order("a/b@example.com"), "example.com com *",
		   "an address with '/' is not a store key: left out");
	tap_is_str(lookup_order("example.org"), "example.org org *",
		   "a bare domain");
}

/* "keyname|d|s|key" of each choice for address, or "error: ..." */
static const char *
choose(const struct dkim_keyed_reader *reader, const char *address,
       bool all_matches)
{
	static char summary[2048];
	struct dkim_signingtable *signing;
	struct dkim_keytable *keys;
	struct dkim_key_choice *choices;
	struct dkim_error error;
	size_t count;

	if (dkim_keyed_signingtable(reader, address, all_matches, &signing,
				    &error) < 0) {
		snprintf(summary, sizeof(summary), "error: %s", error.text);
		return summary;
	}
	if (dkim_keyed_keytable(reader, signing, address, all_matches, &keys,
				&error) < 0) {
		dkim_signingtable_free(&signing);
		snprintf(summary, sizeof(summary), "error: %s", error.text);
		return summary;
	}
	int ret = dkim_keytable_select(signing, keys, address, all_matches,
				       &choices, &count, &error);
	dkim_signingtable_free(&signing);
	dkim_keytable_free(&keys);
	if (ret != DKIM_KEYTABLE_SELECT_OK) {
		snprintf(summary, sizeof(summary), "%s: %s",
			 ret < 0 ? "error" : "bad domain", error.text);
		return summary;
	}
	summary[0] = '\0';
	for (size_t i = 0; i < count; i++) {
		size_t used = strlen(summary);
		snprintf(summary + used, sizeof(summary) - used,
			 "%s%s|%s|%s|%s", i > 0 ? "," : "",
			 choices[i].keyname, choices[i].domain,
			 choices[i].selector, choices[i].key_is_file ?
			 choices[i].key : strncmp(choices[i].key,
			 "-----BEGIN", 10) == 0 ? "pem" : "inline");
	}
	dkim_key_choices_free(&choices, count);
	return summary;
}

static void
test_selection(void)
{
	struct test_store store = { .failing = false };
	struct dkim_keyed_store backend = {
		.name = "dict:test", .lookup = store_lookup,
		.context = &store,
	};
	struct dkim_keyed_cache *cache = dkim_keyed_cache_new();
	struct dkim_keyed_reader reader = {
		.cache = cache, .store = &backend, .now = 1000,
		.ttl_secs = 0,
	};

	store_set(&store, "dkim/signing/example.com", "rsa.example.com, ed");
	store_set(&store, "dkim/signing/ceo@example.com", "ceo");
	store_set(&store, "dkim/signing/quiet@example.com", " ");
	store_set(&store, "dkim/signing/*", "fallback");
	store_set(&store, "dkim/signing/hosted.example", "%");
	store_set(&store, "dkim/signing/broken.example", "no/such");
	store_set(&store, "dkim/key/rsa.example.com",
		  "example.com:rsa:/etc/dkim/example.com/rsa.private\n");
	store_set(&store, "dkim/key/ed",
		  " example.com : ed :\n-----BEGIN PRIVATE KEY-----\n"
		  "MC4CAQAwBQYDK2VwBCIEIEQdgHO5nw9QTLhKw9mE6Hgax6hYSboxi1Pu4LkDep/2\n"
		  "-----END PRIVATE KEY-----\n");
	store_set(&store, "dkim/key/ceo", "example.com:ceo:MC4CAQAwBQYDK2Vw");
	store_set(&store, "dkim/key/fallback",
		  "%:fallback:/etc/dkim/%/fallback.private");
	store_set(&store, "dkim/key/hosted.example",
		  "hosted.example:h:/etc/dkim/hosted.private");

	tap_is_str(choose(&reader, "bob@example.com", false),
		   "rsa.example.com|example.com|rsa|"
		   "/etc/dkim/example.com/rsa.private,ed|example.com|ed|pem",
		   "domain entry: two keys, a file and a PEM value (with "
		   "blanks and line breaks around the parts)");
	tap_is_str(store.asked, "dkim/signing/bob@example.com "
		   "dkim/signing/example.com dkim/key/rsa.example.com "
		   "dkim/key/ed", "asked the address, then the domain, then "
		   "the two keys");
	tap_is_str(choose(&reader, "CEO@Example.com", false),
		   "ceo|example.com|ceo|inline",
		   "the address entry wins over the domain's");
	tap_is_str(choose(&reader, "ceo@example.com", true),
		   "ceo|example.com|ceo|inline,rsa.example.com|example.com|"
		   "rsa|/etc/dkim/example.com/rsa.private,ed|example.com|ed|"
		   "pem,fallback|example.com|fallback|"
		   "/etc/dkim/example.com/fallback.private",
		   "all_matches: every level that has an entry, in order");
	tap_is_str(choose(&reader, "x@news.example.com", false),
		   "rsa.example.com|example.com|rsa|"
		   "/etc/dkim/example.com/rsa.private,ed|example.com|ed|pem",
		   "a subdomain without an entry gets its parent's keys");
	tap_is_str(choose(&reader, "quiet@example.com", false), "",
		   "an empty list stops the lookup: no key");
	tap_is_str(choose(&reader, "x@other.example", false),
		   "fallback|other.example|fallback|"
		   "/etc/dkim/other.example/fallback.private",
		   "'*' catches the rest, '%' in the key entry");
	tap_is_str(choose(&reader, "x@hosted.example", false),
		   "hosted.example|hosted.example|h|/etc/dkim/hosted.private",
		   "key name '%' is the sender's domain");
	tap_ok(strncmp(choose(&reader, "x@broken.example", false),
		       "error: dict:test: the key name 'no/such' cannot be "
		       "looked up", 55) == 0,
	       "a key name with '/' is an error naming the store");

	store_set(&store, "dkim/signing/gone.example", "missing");
	tap_is_str(choose(&reader, "x@gone.example", false),
		   "error: SigningTable entry gone.example names key "
		   "'missing', which is not in the KeyTable",
		   "a key name the store lacks is a configuration error");
	store_set(&store, "dkim/signing/gone.example", "badvalue");
	store_set(&store, "dkim/key/badvalue", "example.com-no-colons");
	tap_is_str(choose(&reader, "x@gone.example", false),
		   "error: dict:test entry: the value for 'badvalue' must be "
		   "DOMAIN:SELECTOR:KEY", "a malformed key entry is an error");

	store.failing = true;
	tap_ok(strstr(choose(&reader, "bob@example.com", false),
		      "dict:test: cannot look up dkim/signing/bob@example.com:"
		      " connection refused") != NULL,
	       "a failing store is an error naming the store, key and why");
	dkim_keyed_cache_free(&cache);
}

static void
test_cache(void)
{
	struct test_store store = { .failing = false };
	struct dkim_keyed_store backend = {
		.name = "dict:a", .lookup = store_lookup, .context = &store,
	};
	struct test_store other_store = { .failing = false };
	struct dkim_keyed_store other_backend = {
		.name = "dict:b", .lookup = store_lookup,
		.context = &other_store,
	};
	struct dkim_keyed_cache *cache = dkim_keyed_cache_new();
	struct dkim_keyed_reader reader = {
		.cache = cache, .store = &backend, .now = 5000,
		.ttl_secs = 60,
	};
	struct dkim_error error;
	const char *value;

	store_set(&store, "dkim/key/k", "one");
	store_set(&other_store, "dkim/key/k", "other");
	tap_ok(dkim_keyed_lookup(&reader, "dkim/key/k", &value, &error) == 1 &&
	       strcmp(value, "one") == 0, "first lookup asks the store");
	store_set(&store, "dkim/key/k", "two");
	reader.now += 59;
	tap_ok(dkim_keyed_lookup(&reader, "dkim/key/k", &value, &error) == 1 &&
	       strcmp(value, "one") == 0 &&
	       dkim_keyed_cache_lookup_count(cache) == 1,
	       "within the TTL: the cached value, the store not asked");
	reader.now += 1;
	tap_ok(dkim_keyed_lookup(&reader, "dkim/key/k", &value, &error) == 1 &&
	       strcmp(value, "two") == 0,
	       "at the TTL: the changed value");

	tap_ok(dkim_keyed_lookup(&reader, "dkim/key/none", &value, &error) == 0,
	       "a missing key");
	store_set(&store, "dkim/key/none", "new");
	tap_ok(dkim_keyed_lookup(&reader, "dkim/key/none", &value, &error) == 0,
	       "its absence is cached too");
	reader.now += 60;
	tap_ok(dkim_keyed_lookup(&reader, "dkim/key/none", &value, &error) == 1,
	       "an entry added is seen after the TTL");

	reader.store = &other_backend;
	tap_ok(dkim_keyed_lookup(&reader, "dkim/key/k", &value, &error) == 1 &&
	       strcmp(value, "other") == 0,
	       "two stores with the same keys are kept apart");
	reader.store = &backend;

	tap_ok(dkim_keyed_lookup(&reader, "dkim/key/k", &value, &error) == 1 &&
	       strcmp(value, "two") == 0, "refetched after the TTL");
	store.failing = true;
	reader.now += 30;
	tap_ok(dkim_keyed_lookup(&reader, "dkim/key/k", &value, &error) == 1 &&
	       strcmp(value, "two") == 0,
	       "store down, entry within the TTL: still used");
	reader.now += 30;
	tap_ok(dkim_keyed_lookup(&reader, "dkim/key/k", &value, &error) < 0 &&
	       strstr(error.text, "connection refused") != NULL,
	       "store down, entry expired: an error, never the stale value");
	tap_ok(dkim_keyed_lookup(&reader, "dkim/key/k", &value, &error) < 0,
	       "and again: failures are not cached");
	store.failing = false;
	reader.now -= 1000;
	unsigned asked = dkim_keyed_cache_lookup_count(cache);
	tap_ok(dkim_keyed_lookup(&reader, "dkim/key/k", &value, &error) == 1 &&
	       dkim_keyed_cache_lookup_count(cache) == asked + 1,
	       "a clock that went back makes the entry stale");

	reader.ttl_secs = 0;
	asked = dkim_keyed_cache_lookup_count(cache);
	dkim_keyed_lookup(&reader, "dkim/key/k", &value, &error);
	dkim_keyed_lookup(&reader, "dkim/key/k", &value, &error);
	tap_is_int(dkim_keyed_cache_lookup_count(cache), asked + 2,
		   "TTL 0: the store is asked every time");

	/* a value over the limit */
	char *huge = malloc(DKIM_KEYED_MAX_VALUE_SIZE + 2);
	memset(huge, 'a', DKIM_KEYED_MAX_VALUE_SIZE + 1);
	huge[DKIM_KEYED_MAX_VALUE_SIZE + 1] = '\0';
	store_set(&store, "dkim/key/huge", huge);
	tap_ok(dkim_keyed_lookup(&reader, "dkim/key/huge", &value, &error) < 0 &&
	       strstr(error.text, "longer than") != NULL,
	       "a value over DKIM_KEYED_MAX_VALUE_SIZE is an error");
	free(huge);
	dkim_keyed_cache_free(&cache);
}

/* Many distinct keys (as many From addresses would give): memory stays
 * under the bound, lookups stay right. */
static void
test_cache_bound(void)
{
	struct test_store store = { .failing = false };
	struct dkim_keyed_store backend = {
		.name = "dict:a", .lookup = store_lookup, .context = &store,
	};
	struct dkim_keyed_cache *cache = dkim_keyed_cache_new();
	struct dkim_keyed_reader reader = {
		.cache = cache, .store = &backend, .now = 1,
		.ttl_secs = 3600,
	};
	char key[64], *value_text = malloc(40000);
	struct dkim_error error;
	const char *value;
	bool all_right = true;

	memset(value_text, 'v', 39999);
	value_text[39999] = '\0';
	store_set(&store, "dkim/key/big", value_text);
	/* 1000 lookups of 40 KB values: 40 MB unbounded */
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "dkim/key/big");
		store.asked[0] = '\0';
		reader.now++;
		reader.ttl_secs = 0;
		if (dkim_keyed_lookup(&reader, key, &value, &error) != 1 ||
		    strlen(value) != 39999)
			all_right = false;
	}
	reader.ttl_secs = 3600;
	for (unsigned i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "dkim/signing/u%u@example.com", i);
		store.asked[0] = '\0';
		if (dkim_keyed_lookup(&reader, key, &value, &error) != 0)
			all_right = false;
	}
	tap_ok(all_right, "every lookup answered right while entries were "
	       "evicted");
	size_t heap = mallinfo2().uordblks;
	tap_ok(heap < 2 * DKIM_KEYED_CACHE_MAX_BYTES,
	       "the heap stays within twice the cache bound (%zu bytes)",
	       heap);
	free(value_text);
	dkim_keyed_cache_free(&cache);
}

int
main(void)
{
	test_lookup_order();
	test_selection();
	test_cache();
	test_cache_bound();
	return tap_done();
}

/* The milter's signing keys: see milter-keys.h. */
#include "milter-keys.h"
#include "dkim-keytable-cache.h"
#include "dkim-util.h"
#include "milter-log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* dkim-genkey's size, and what is expected of a DKIM key today; smaller
 * keys still sign, with a warning at start-up. */
#define RECOMMENDED_RSA_BITS 2048

static const struct milter_config *keys_config;
static struct dkim_keytable_cache *cache;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned holders;

void
milter_keys_init(const struct milter_config *config)
{
	keys_config = config;
	cache = dkim_keytable_cache_new();
}

void
milter_keys_deinit(void)
{
	dkim_keytable_cache_free(&cache);
	keys_config = NULL;
}

void
milter_keys_begin(void)
{
	pthread_mutex_lock(&cache_lock);
	holders++;
	pthread_mutex_unlock(&cache_lock);
}

void
milter_keys_end(void)
{
	pthread_mutex_lock(&cache_lock);
	if (--holders == 0)
		dkim_keytable_cache_release(cache);
	pthread_mutex_unlock(&cache_lock);
}

void
milter_keyset_add(struct milter_keyset *keys, const char *domain,
		  const char *selector, const char *identity,
		  const dkim_privkey *key)
{
	keys->keys = dkim_realloc(keys->keys,
				  (keys->count + 1) * sizeof(*keys->keys));
	keys->keys[keys->count++] = (struct milter_key){
		.domain = dkim_strdup(domain),
		.selector = dkim_strdup(selector),
		.identity = identity != NULL ? dkim_strdup(identity) : NULL,
		.key = key,
	};
}

void
milter_keyset_free(struct milter_keyset *keys)
{
	for (size_t i = 0; i < keys->count; i++) {
		free(keys->keys[i].domain);
		free(keys->keys[i].selector);
		free(keys->keys[i].identity);
	}
	free(keys->keys);
	memset(keys, 0, sizeof(*keys));
}

/* Called with the lock held. */
static int
add_choices(const struct dkim_signingtable *signingtable,
	    const struct dkim_keytable *keytable, const char *address,
	    struct milter_keyset *keys, struct dkim_error *error)
{
	struct dkim_key_choice *choices;
	size_t count;
	int ret = 0;

	switch (dkim_keytable_select(signingtable, keytable, address,
				     keys_config->multiple_signatures,
				     &choices, &count, error)) {
	case DKIM_KEYTABLE_SELECT_ERROR:
		return -1;
	case DKIM_KEYTABLE_SELECT_BAD_DOMAIN: {
		/* the sender's doing: unsigned, as when no entry applies */
		char shown[MILTER_SHOWN_MAX + 4];

		milter_log(MILTER_LOG_INFO, "not signed: %s",
			   milter_shown(shown, error->text));
		return 0;
	}
	case DKIM_KEYTABLE_SELECT_OK:
		break;
	}
	for (size_t i = 0; i < count && ret == 0; i++) {
		const dkim_privkey *key;
		struct dkim_error key_error;

		ret = dkim_keytable_cache_privkey(cache, choices[i].key,
						  choices[i].key_is_file,
						  keys_config->privkey_flags,
						  &key, &key_error);
		if (ret < 0)
			dkim_error_set(error, "key %s (d=%s s=%s): %s",
				       choices[i].keyname, choices[i].domain,
				       choices[i].selector, key_error.text);
		else
			milter_keyset_add(keys, choices[i].domain,
					  choices[i].selector,
					  choices[i].identity, key);
	}
	dkim_key_choices_free(&choices, count);
	return ret;
}

/* A SigningTable's warnings (patterns like "*tenant.com"), once per load. */
static void
log_signingtable_warnings(const struct dkim_signingtable *signingtable)
{
	for (const char *const *warning =
		dkim_signingtable_warnings(signingtable);
	     *warning != NULL; warning++)
		milter_log(MILTER_LOG_WARNING, "SigningTable: %s", *warning);
}

static int
tables(const struct dkim_signingtable **signingtable_r,
       const struct dkim_keytable **keytable_r, struct dkim_error *error)
{
	bool loaded;

	if (dkim_keytable_cache_signingtable(cache, keys_config->signingtable,
					     keys_config->signingtable_kind,
					     signingtable_r, &loaded,
					     error) < 0)
		return -1;
	if (loaded)
		log_signingtable_warnings(*signingtable_r);
	return dkim_keytable_cache_keytable(cache, keys_config->keytable,
					    keytable_r, error);
}

/* The Domain entry that covers `domain`: the domain itself, or with
 * SubDomains the nearest parent listed.  NULL if none. */
static const char *
listed_domain(const char *domain)
{
	for (const char *name = domain; name != NULL;) {
		if (milter_dataset_find(keys_config->domains, name) != NULL)
			return name;
		if (!keys_config->subdomains)
			break;
		name = strchr(name, '.');
		if (name != NULL)
			name++;
	}
	return NULL;
}

/* Called with the lock held. */
static int
add_single_key(const char *address, struct milter_keyset *keys,
	       struct dkim_error *error)
{
	const char *at = strrchr(address, '@');
	const char *domain = listed_domain(at != NULL ? at + 1 : address);
	const dkim_privkey *key;

	if (domain == NULL)
		return 0;
	if (dkim_keytable_cache_privkey(cache, keys_config->keyfile, true,
					keys_config->privkey_flags, &key,
					error) < 0)
		return -1;
	milter_keyset_add(keys, domain, keys_config->selector, NULL, key);
	return 0;
}

int
milter_keys_for_address(const char *address, struct milter_keyset *keys,
			struct dkim_error *error)
{
	const struct dkim_signingtable *signingtable;
	const struct dkim_keytable *keytable;
	int ret = 0;

	pthread_mutex_lock(&cache_lock);
	if (keys_config->keytable != NULL) {
		ret = tables(&signingtable, &keytable, error);
		if (ret == 0)
			ret = add_choices(signingtable, keytable, address,
					  keys, error);
	} else if (keys_config->keyfile != NULL &&
		   keys_config->domains != NULL) {
		ret = add_single_key(address, keys, error);
	}
	pthread_mutex_unlock(&cache_lock);
	return ret;
}

int
milter_keys_by_name(const char *keyname, const char *address,
		    struct milter_keyset *keys, struct dkim_error *error)
{
	const struct dkim_keytable *keytable;
	struct dkim_signingtable *one_line;
	int ret;

	if (keys_config->keytable == NULL)
		return milter_keys_for_address(address, keys, error);
	/* What a SigningTable line "* keyname" gives, '%' and all. */
	char *text = dkim_strdup_printf("* %s\n", keyname);
	ret = dkim_signingtable_parse(text, strlen(text), DKIM_TABLE_REFILE,
				      "ResignMailTo", &one_line, error);
	free(text);
	if (ret < 0)
		return -1;
	pthread_mutex_lock(&cache_lock);
	ret = dkim_keytable_cache_keytable(cache, keys_config->keytable,
					   &keytable, error);
	if (ret == 0)
		ret = add_choices(one_line, keytable, address, keys, error);
	pthread_mutex_unlock(&cache_lock);
	dkim_signingtable_free(&one_line);
	return ret;
}

/* ---- the start-up check ---- */

static void
check_key(const struct milter_config *config, const char *keyword,
	  const char *what, const char *key, bool is_file,
	  struct milter_problems *problems)
{
	const dkim_privkey *privkey;
	struct dkim_error error;

	if (dkim_keytable_cache_privkey(cache, key, is_file,
					config->privkey_flags, &privkey,
					&error) < 0) {
		milter_config_problem(config, problems, true, keyword,
				      "%s: %s", what, error.text);
		return;
	}
	if (dkim_privkey_type(privkey) == DKIM_KEY_RSA &&
	    dkim_privkey_bits(privkey) < RECOMMENDED_RSA_BITS)
		milter_config_problem(config, problems, false, keyword,
			"%s: an RSA key of %u bits; make a %d-bit key "
			"(dkim-genkey) and publish it under a new selector",
			what, dkim_privkey_bits(privkey),
			RECOMMENDED_RSA_BITS);
}

/* Each KeyTable entry's key, found as a SigningTable line naming it
 * would find it (so file names and inline keys are told apart by the
 * library's rule).  Keys whose file name depends on the sender's domain
 * ('%') are known only per message. */
static void
check_keytable(const struct milter_config *config,
	       const struct dkim_keytable *keytable,
	       struct milter_problems *problems)
{
	for (size_t i = 0; i < dkim_keytable_count(keytable); i++) {
		const struct dkim_keytable_entry *entry =
			dkim_keytable_entry(keytable, i);
		struct dkim_signingtable *one_line;
		struct dkim_key_choice *choices;
		struct dkim_error error;
		size_t count = 0;

		if (strchr(entry->key, '%') != NULL)
			continue;
		char *text = dkim_strdup_printf("* %s\n", entry->name);
		if (dkim_signingtable_parse(text, strlen(text),
					    DKIM_TABLE_REFILE, "check",
					    &one_line, &error) == 0 &&
		    dkim_keytable_select(one_line, keytable,
					 "postmaster@example.com", false,
					 &choices, &count, &error) == 0 &&
		    count == 1) {
			char *what = dkim_strdup_printf("%s line %u (%s)",
				config->keytable, entry->line, entry->name);
			check_key(config, "KeyTable", what, choices[0].key,
				  choices[0].key_is_file, problems);
			free(what);
			dkim_key_choices_free(&choices, count);
		}
		dkim_signingtable_free(&one_line);
		free(text);
	}
}

static void
check_signingtable(const struct milter_config *config,
		   const struct dkim_signingtable *signingtable,
		   const struct dkim_keytable *keytable,
		   struct milter_problems *problems)
{
	for (size_t i = 0; i < dkim_signingtable_count(signingtable); i++) {
		const struct dkim_signingtable_entry *entry =
			dkim_signingtable_entry(signingtable, i);

		if (strcmp(entry->keyname, "%") != 0 &&
		    dkim_keytable_lookup(keytable, entry->keyname) == NULL)
			milter_config_problem(config, problems, true,
				"SigningTable", "%s line %u (%s) names key "
				"'%s', which is not in the KeyTable",
				config->signingtable, entry->line,
				entry->pattern, entry->keyname);
	}
}

void
milter_keys_check(const struct milter_config *config,
		  struct milter_problems *problems)
{
	const struct dkim_signingtable *signingtable;
	const struct dkim_keytable *keytable;
	struct dkim_error error;
	bool loaded;

	if (!config->sign)
		return;
	pthread_mutex_lock(&cache_lock);
	if (config->keytable != NULL && config->signingtable != NULL) {
		if (dkim_keytable_cache_signingtable(cache,
				config->signingtable, config->signingtable_kind,
				&signingtable, &loaded, &error) < 0)
			milter_config_problem(config, problems, true,
					      "SigningTable", "%s", error.text);
		else if (dkim_keytable_cache_keytable(cache, config->keytable,
						      &keytable, &error) < 0)
			milter_config_problem(config, problems, true,
					      "KeyTable", "%s", error.text);
		else {
			check_signingtable(config, signingtable, keytable,
					   problems);
			check_keytable(config, keytable, problems);
		}
	} else if (config->keytable == NULL && config->keyfile != NULL &&
		   config->domains != NULL && config->selector != NULL) {
		check_key(config, "KeyFile", config->keyfile, config->keyfile,
			  true, problems);
		for (size_t i = 0; i < milter_dataset_count(config->domains);
		     i++) {
			const char *domain =
				milter_dataset_entry(config->domains, i)->key;
			if (milter_dataset_kind(config->domains) ==
			    MILTER_DATASET_LIST &&
			    !dkim_domain_syntax_ok(domain))
				milter_config_problem(config, problems, true,
					"Domain", "'%s' is not a domain name",
					domain);
		}
	}
	pthread_mutex_unlock(&cache_lock);
}

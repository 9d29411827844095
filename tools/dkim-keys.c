/* dkim-keys: the life of the keys in a KeyTable and SigningTable, files or
 * a Dovecot dict, as the submission plugin reads them: which keys there
 * are and whether DNS publishes them right (status), their records (zone),
 * a new key that DNS must serve before mail is signed with it (rotate),
 * and removing a key nothing signs with any more (retire).  See
 * dkim-keys(1). */
#include "tool-common.h"
#include "tool-keygen.h"
#include "keys-tables.h"
#include "dkim-keytable-cache.h"
#include "dkim-util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
	"dkim-keys --keytable SPEC --signingtable SPEC [--key-dir DIR] "
	"[--dns-table FILE | --resolver ADDR[@PORT]] [--trust-anchor FILE] "
	"[--dns-timeout SECONDS] [--doveadm-config FILE] [--allow-unsafe-key] "
	"status | zone [--panel] | rotate DOMAIN [-t rsa|ed25519] [-b BITS] "
	"[-s SELECTOR] [--grace DAYS] [--switch] | "
	"retire DOMAIN:SELECTOR [--force]";

/* How long a key switched away from stays, unless --grace says otherwise:
 * mail signed with it is still on its way or being verified again. */
#define DEFAULT_GRACE_DAYS 7
#define MAX_GRACE_DAYS 3650
#define SECS_PER_DAY (24 * 60 * 60)

enum {
	OPT_KEYTABLE = TOOL_OPT_FIRST_OWN,
	OPT_SIGNINGTABLE,
	OPT_KEY_DIR,
	OPT_DNS_TIMEOUT,
	OPT_DOVEADM_CONFIG,
	OPT_ALLOW_UNSAFE_KEY,
	OPT_PANEL,
	OPT_GRACE,
	OPT_SWITCH,
	OPT_FORCE,
};

static const struct option long_options[] = {
	TOOL_RESOLVER_LONG_OPTIONS,
	{ "keytable", required_argument, NULL, OPT_KEYTABLE },
	{ "signingtable", required_argument, NULL, OPT_SIGNINGTABLE },
	{ "key-dir", required_argument, NULL, OPT_KEY_DIR },
	{ "dns-timeout", required_argument, NULL, OPT_DNS_TIMEOUT },
	{ "doveadm-config", required_argument, NULL, OPT_DOVEADM_CONFIG },
	{ "allow-unsafe-key", no_argument, NULL, OPT_ALLOW_UNSAFE_KEY },
	{ "panel", no_argument, NULL, OPT_PANEL },
	{ "type", required_argument, NULL, 't' },
	{ "bits", required_argument, NULL, 'b' },
	{ "selector", required_argument, NULL, 's' },
	{ "grace", required_argument, NULL, OPT_GRACE },
	{ "switch", no_argument, NULL, OPT_SWITCH },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

struct options {
	const char *keytable, *signingtable, *key_dir, *doveadm_config;
	struct tool_resolver_options resolver;
	unsigned dns_timeout_msecs;
	unsigned privkey_flags;
	bool panel, ed25519, switch_now, force;
	bool bits_given, selector_given, grace_given;
	unsigned bits;
	const char *selector;
	unsigned grace_days;
};

struct context {
	const struct options *options;
	struct keys_tables *tables;
	struct dkim_keytable_cache *keys;
	dkim_resolver *resolver;
	time_t now;
};

/* ---- keys and DNS ---- */

/* A template ("%" for the sender's domain) is no one key. */
static bool
key_is_template(const struct keys_key *key)
{
	return strcmp(key->domain, "%") == 0 || strchr(key->key, '%') != NULL;
}

/* The private key, or NULL with *error_r (a static message or the
 * error's text) set. */
static const dkim_privkey *
load_key(struct context *ctx, const struct keys_key *key,
	 struct dkim_error *error)
{
	const dkim_privkey *privkey;

	if (key_is_template(key)) {
		dkim_error_set(error, "a template for every sender domain "
			       "('%%'): no one key");
		return NULL;
	}
	if (dkim_keytable_cache_privkey(ctx->keys, key->key, key->key_is_file,
					ctx->options->privkey_flags,
					&privkey, error) < 0) {
		size_t len = strlen(error->text);
		snprintf(error->text + len, sizeof(error->text) - len, "%s",
			 tool_unsafe_key_hint(error));
		return NULL;
	}
	return privkey;
}

static const char *
key_type_name(const dkim_privkey *key, char buf[32])
{
	if (dkim_privkey_type(key) == DKIM_KEY_ED25519)
		return "ed25519";
	snprintf(buf, 32, "rsa-%u", dkim_privkey_bits(key));
	return buf;
}

enum dns_state {
	DNS_MATCHES,	/* one record, valid, of this key */
	DNS_MISSING,	/* no record */
	DNS_MISMATCH,	/* a valid record of another key */
	DNS_BROKEN,	/* unusable: syntax, revoked, several, bogus */
	DNS_TEMPFAIL,	/* no answer */
};

struct dns_check {
	enum dns_state state;
	enum dkim_dnssec dnssec;
	bool dnssec_known;
	char *detail;		/* what is wrong; NULL when it matches */
};

static void
check_dns(struct context *ctx, const char *domain, const char *selector,
	  const dkim_privkey *key, struct dns_check *check)
{
	char qname[512];

	snprintf(qname, sizeof(qname), "%s._domainkey.%s", selector, domain);
	const struct dkim_dns_result *answer =
		dkim_resolver_lookup(ctx->resolver, qname,
				     ctx->options->dns_timeout_msecs);
	struct dkim_key_record record;
	struct dkim_error error;
	dkim_pubkey *pub = NULL;

	check->dnssec = answer->dnssec;
	check->dnssec_known = answer->status == DKIM_DNS_FOUND ||
		answer->status == DKIM_DNS_NOT_FOUND ||
		answer->dnssec == DKIM_DNSSEC_BOGUS;
	check->detail = NULL;
	if (answer->dnssec == DKIM_DNSSEC_BOGUS) {
		check->state = DNS_BROKEN;
		check->detail = dkim_strdup_printf(
			"DNSSEC validation of %s failed (bogus)", qname);
	} else if (answer->status == DKIM_DNS_NOT_FOUND) {
		check->state = DNS_MISSING;
		check->detail = dkim_strdup_printf(
			"no TXT record at %s", qname);
	} else if (answer->status != DKIM_DNS_FOUND) {
		check->state = DNS_TEMPFAIL;
		check->detail = dkim_strdup_printf(
			"DNS lookup of %s failed: %s", qname,
			 answer->detail != NULL ? answer->detail : "error");
	} else if (answer->record_count != 1) {
		check->state = DNS_BROKEN;
		check->detail = dkim_strdup_printf(
			"%zu TXT records at %s: DKIM needs exactly one",
			 answer->record_count, qname);
	} else if (dkim_key_record_parse(answer->records[0],
					 answer->record_lengths[0], &record,
					 &pub, &error) != DKIM_REASON_NONE) {
		check->state = DNS_BROKEN;
		check->detail = dkim_strdup_printf(
			"the record at %s is unusable: %s", qname,
			 error.text);
	} else if (record.revoked) {
		check->state = DNS_BROKEN;
		check->detail = dkim_strdup_printf(
			"the record at %s is revoked (empty p=)", qname);
	} else if (key != NULL && !dkim_privkey_matches(key, pub)) {
		check->state = DNS_MISMATCH;
		check->detail = dkim_strdup_printf(
			"the record at %s is of another key", qname);
	} else {
		check->state = DNS_MATCHES;
	}
	dkim_pubkey_free(&pub);
}

static const char *
dns_state_text(const struct dns_check *check)
{
	switch (check->state) {
	case DNS_MATCHES: return "published, matches";
	case DNS_MISSING: return "not published";
	case DNS_MISMATCH: return "published, another key";
	case DNS_BROKEN: return "broken record";
	case DNS_TEMPFAIL: return "no answer";
	}
	return "?";
}

static const char *
dnssec_text(const struct dns_check *check)
{
	if (!check->dnssec_known)
		return "-";
	if (check->dnssec == DKIM_DNSSEC_OFF)
		return "not validated";
	return dkim_dnssec_name(check->dnssec);
}

/* When the key was made: the note's created=, else the key file's
 * modification time; 0 when unknown. */
static time_t
key_created(const struct keys_key *key)
{
	char *created = keys_note_get(key->note, KEYS_NOTE_CREATED);
	time_t t = 0;
	struct stat st;

	if (created == NULL || !keys_parse_time(created, &t)) {
		t = 0;
		if (key->key_is_file && !key_is_template(key) &&
		    stat(key->key, &st) == 0)
			t = st.st_mtime;
	}
	free(created);
	return t;
}

/* "in use", "pending", "retired, remove after ...", "unused". */
static void
key_state(struct context *ctx, const struct keys_key *key, char *buf,
	  size_t size)
{
	char *retired = keys_note_get(key->note, KEYS_NOTE_RETIRED);
	char *after = keys_note_get(key->note, KEYS_NOTE_REMOVE_AFTER);
	char *created = keys_note_get(key->note, KEYS_NOTE_CREATED);
	time_t t;

	if (keys_tables_key_in_use(ctx->tables, key->name))
		snprintf(buf, size, "in use");
	else if (retired != NULL && after != NULL &&
		 keys_parse_time(after, &t) && t > ctx->now)
		snprintf(buf, size, "retired, remove after %.10s", after);
	else if (retired != NULL)
		snprintf(buf, size, "retired, may be removed");
	else if (created != NULL)
		snprintf(buf, size, "pending");
	else
		snprintf(buf, size, "unused");
	free(retired);
	free(after);
	free(created);
}

/* ---- status ---- */

#define STATUS_COLUMNS 7

struct status_row {
	char *cells[STATUS_COLUMNS];
};

static int
cmd_status(struct context *ctx)
{
	static const char *const header[STATUS_COLUMNS] = {
		"DOMAIN", "SELECTOR", "TYPE", "AGE", "STATE", "DNS", "DNSSEC"
	};
	size_t count, signing_count;
	const struct keys_key *keys = keys_tables_keys(ctx->tables, &count);
	const struct keys_signing *signing =
		keys_tables_signing(ctx->tables, &signing_count);
	struct status_row *rows = dkim_calloc(count + 1, sizeof(*rows));
	struct dkim_buf problems = { 0 };
	bool broken = false, tempfail = false;
	size_t widths[STATUS_COLUMNS] = { 0 };

	for (size_t c = 0; c < STATUS_COLUMNS; c++)
		rows[0].cells[c] = dkim_strdup(header[c]);
	for (size_t i = 0; i < count; i++) {
		const struct keys_key *key = &keys[i];
		struct dkim_error error;
		struct dns_check check = { .state = DNS_MATCHES };
		char type[32], state[96], age[32];
		bool in_use = keys_tables_key_in_use(ctx->tables, key->name);
		const dkim_privkey *privkey = load_key(ctx, key, &error);
		time_t created = key_created(key);

		key_state(ctx, key, state, sizeof(state));
		if (created == 0)
			snprintf(age, sizeof(age), "-");
		else
			snprintf(age, sizeof(age), "%lldd", (long long)
				 ((ctx->now - created) / SECS_PER_DAY));
		if (!key_is_template(key)) {
			check_dns(ctx, key->domain, key->selector, privkey,
				  &check);
		}
		struct status_row *row = &rows[i + 1];
		row->cells[0] = dkim_strdup(key->domain);
		row->cells[1] = dkim_strdup(key->selector);
		row->cells[2] = dkim_strdup(privkey != NULL ?
				       key_type_name(privkey, type) :
				       key_is_template(key) ? "template" :
				       "unreadable");
		row->cells[3] = dkim_strdup(age);
		row->cells[4] = dkim_strdup(state);
		row->cells[5] = dkim_strdup(key_is_template(key) ? "-" :
				       dns_state_text(&check));
		row->cells[6] = dkim_strdup(key_is_template(key) ? "-" :
				       dnssec_text(&check));

		if (privkey == NULL && !key_is_template(key)) {
			dkim_buf_printf(&problems, "%s: %s%s\n", key->name,
					error.text, in_use ? "" :
					" (not in use)");
			broken |= in_use;
		}
		if (!key_is_template(key) && check.state != DNS_MATCHES) {
			dkim_buf_printf(&problems, "%s: %s%s\n", key->name,
					check.detail, in_use ? "" :
					" (not in use)");
			if (check.state == DNS_TEMPFAIL)
				tempfail |= in_use;
			else
				broken |= in_use;
		}
		free(check.detail);
	}
	for (size_t i = 0; i < signing_count; i++) {
		for (char **name = signing[i].keynames; *name != NULL;
		     name++) {
			if (strcmp(*name, "%") == 0 ||
			    keys_tables_find(ctx->tables, *name) != NULL)
				continue;
			dkim_buf_printf(&problems, "SigningTable entry %s "
					"names key %s, which is not in the "
					"KeyTable\n", signing[i].pattern,
					*name);
			broken = true;
		}
	}

	for (size_t r = 0; r <= count; r++) {
		for (size_t c = 0; c < STATUS_COLUMNS; c++) {
			size_t len = strlen(rows[r].cells[c]);
			if (len > widths[c])
				widths[c] = len;
		}
	}
	for (size_t r = 0; r <= count; r++) {
		for (size_t c = 0; c < STATUS_COLUMNS; c++) {
			if (c + 1 < STATUS_COLUMNS)
				printf("%-*s  ", (int)widths[c],
				       rows[r].cells[c]);
			else
				printf("%s\n", rows[r].cells[c]);
			free(rows[r].cells[c]);
		}
	}
	free(rows);
	if (problems.len > 0) {
		printf("\nProblems:\n%s", problems.data);
	}
	dkim_buf_free(&problems);
	if (broken)
		return EXIT_FAILURE;
	return tempfail ? EXIT_TEMPFAIL : EXIT_SUCCESS;
}

/* ---- zone ---- */

static int
cmd_zone(struct context *ctx)
{
	size_t count;
	const struct keys_key *keys = keys_tables_keys(ctx->tables, &count);
	int ret = EXIT_SUCCESS;

	for (size_t i = 0; i < count; i++) {
		struct dkim_error error;

		if (key_is_template(&keys[i]))
			continue;
		const dkim_privkey *key = load_key(ctx, &keys[i], &error);
		if (key == NULL) {
			tool_error("%s: %s", keys[i].name, error.text);
			ret = EXIT_FAILURE;
			continue;
		}
		char *record = dkim_privkey_public_record(key);
		if (ctx->options->panel) {
			printf("%s._domainkey.%s\t%s\n", keys[i].selector,
			       keys[i].domain, record);
		} else {
			char *line = tool_zone_line(keys[i].domain,
						    keys[i].selector, record);
			printf("%s\n", line);
			free(line);
		}
		free(record);
	}
	return ret;
}

/* ---- rotate ---- */

static bool
domain_equal(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

static bool
key_has_type(struct context *ctx, const struct keys_key *key, bool ed25519)
{
	struct dkim_error error;
	const dkim_privkey *privkey = load_key(ctx, key, &error);

	return privkey != NULL &&
		(dkim_privkey_type(privkey) == DKIM_KEY_ED25519) == ed25519;
}

/* A key made by an earlier rotate and not switched to yet. */
static const struct keys_key *
find_pending(struct context *ctx, const char *domain)
{
	size_t count;
	const struct keys_key *keys = keys_tables_keys(ctx->tables, &count);

	for (size_t i = 0; i < count; i++) {
		char *created = keys_note_get(keys[i].note, KEYS_NOTE_CREATED);
		char *retired = keys_note_get(keys[i].note, KEYS_NOTE_RETIRED);
		bool pending = created != NULL && retired == NULL;

		free(created);
		free(retired);
		if (pending && domain_equal(keys[i].domain, domain) &&
		    !keys_tables_key_in_use(ctx->tables, keys[i].name) &&
		    key_has_type(ctx, &keys[i], ctx->options->ed25519))
			return &keys[i];
	}
	return NULL;
}

/* A selector of a key in the KeyTable, or of a key file left in the key
 * directory (a retired key's: its record may still be cached). */
static bool
selector_taken(struct context *ctx, const char *domain, const char *selector)
{
	size_t count;
	const struct keys_key *keys = keys_tables_keys(ctx->tables, &count);
	struct stat st;
	char path[PATH_MAX];

	for (size_t i = 0; i < count; i++) {
		if (domain_equal(keys[i].domain, domain) &&
		    strcasecmp(keys[i].selector, selector) == 0)
			return true;
	}
	if (ctx->options->key_dir == NULL)
		return false;
	tool_format_path(path, sizeof(path), "%s/%s/%s.private",
			 ctx->options->key_dir, domain, selector);
	return lstat(path, &st) == 0;
}

/* The date (UTC), then "b".."z" when that is taken. */
static bool
new_selector(struct context *ctx, const char *domain, char buf[32])
{
	struct tm tm;

	gmtime_r(&ctx->now, &tm);
	strftime(buf, 32, "%Y%m%d", &tm);
	size_t len = strlen(buf);
	for (char suffix = 'b'; selector_taken(ctx, domain, buf); suffix++) {
		if (suffix > 'z')
			return false;
		buf[len] = suffix;
		buf[len + 1] = '\0';
	}
	return true;
}

/* Writes the key into DIR/DOMAIN/SELECTOR.private (mode 0600); returns
 * its absolute name, or NULL after reporting why not. */
static char *
write_key_file(const char *key_dir, const char *domain, const char *selector,
	       const char *pem)
{
	char dir[PATH_MAX], path[PATH_MAX];
	char *base = realpath(key_dir, NULL);

	if (base == NULL) {
		tool_error("--key-dir %s: %s", key_dir, strerror(errno));
		return NULL;
	}
	tool_format_path(dir, sizeof(dir), "%s/%s", base, domain);
	free(base);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		tool_error("cannot create %s: %s", dir, strerror(errno));
		return NULL;
	}
	tool_format_path(path, sizeof(path), "%s/%s.private", dir, selector);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		      O_CLOEXEC, 0600);
	size_t len = strlen(pem);
	if (fd < 0 || write(fd, pem, len) != (ssize_t)len || fsync(fd) < 0 ||
	    close(fd) < 0) {
		tool_error("cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			unlink(path);
		return NULL;
	}
	return dkim_strdup(path);
}

/* Makes the new key and adds it to the KeyTable; returns its name. */
static char *
make_key(struct context *ctx, const char *domain)
{
	const struct options *options = ctx->options;
	char selector[32], now[32];
	struct dkim_error error;

	if (options->selector_given) {
		if (selector_taken(ctx, domain, options->selector)) {
			tool_error("%s already has a key with the selector %s",
				   domain, options->selector);
			return NULL;
		}
		snprintf(selector, sizeof(selector), "%s", options->selector);
	} else if (!new_selector(ctx, domain, selector)) {
		tool_error("no free selector left for today; give one with -s");
		return NULL;
	}
	char *pem = tool_keygen_pem(options->ed25519, options->bits);
	if (pem == NULL) {
		tool_error("key generation failed");
		return NULL;
	}
	char *file = NULL;
	if (options->key_dir != NULL) {
		file = write_key_file(options->key_dir, domain, selector, pem);
		if (file == NULL) {
			tool_keygen_free_pem(&pem);
			return NULL;
		}
	}
	keys_format_time(ctx->now, now);
	char *note = keys_note_set("", KEYS_NOTE_CREATED, now);
	char *name = dkim_strdup_printf("%s._domainkey.%s", selector, domain);
	dkim_ascii_lowercase(name);
	struct keys_key key = {
		.name = name, .domain = (char *)domain, .selector = selector,
		.key = file != NULL ? file : pem, .note = note,
	};
	int ret = keys_tables_add_key(ctx->tables, &key, &error);
	if (ret < 0) {
		tool_error("cannot add the key to %s: %s",
			   ctx->options->keytable, error.text);
		if (file != NULL)
			unlink(file);
	} else {
		printf("New key %s: d=%s s=%s, %s, %s\n", name, domain,
		       selector, options->ed25519 ? "Ed25519" :
		       "RSA", file != NULL ? file : "stored in the KeyTable");
	}
	tool_keygen_free_pem(&pem);
	free(file);
	free(note);
	if (ret < 0) {
		free(name);
		return NULL;
	}
	return name;
}

static void
print_record(const struct keys_key *key, const dkim_privkey *privkey)
{
	char *record = dkim_privkey_public_record(privkey);
	char *line = tool_zone_line(key->domain, key->selector, record);

	printf("\nPublish this record.  Zone file line:\n%s\n\n"
	       "For a DNS web panel, one TXT record:\n"
	       "  name:  %s._domainkey   (full name %s._domainkey.%s)\n"
	       "  value: %s\n\n", line, key->selector, key->selector,
	       key->domain, record);
	free(line);
	free(record);
}

/* The keys of this type the SigningTable uses for the domain (an unreadable
 * one counts whatever the type: rotating away from it is the cure). */
static char **
keys_in_use(struct context *ctx, const char *domain)
{
	size_t count, found = 0;
	const struct keys_key *keys = keys_tables_keys(ctx->tables, &count);
	char **names = dkim_calloc(count + 1, sizeof(*names));

	for (size_t i = 0; i < count; i++) {
		struct dkim_error error;

		if (!domain_equal(keys[i].domain, domain) ||
		    !keys_tables_key_in_use(ctx->tables, keys[i].name))
			continue;
		if (load_key(ctx, &keys[i], &error) == NULL ||
		    key_has_type(ctx, &keys[i], ctx->options->ed25519))
			names[found++] = dkim_strdup(keys[i].name);
	}
	return names;
}

/* Marks a key switched away from, with the end of its grace period. */
static int
note_retired(struct context *ctx, const char *name)
{
	const struct keys_key *key = keys_tables_find(ctx->tables, name);
	char now[32], after[32];
	struct dkim_error error;

	keys_format_time(ctx->now, now);
	keys_format_time(ctx->now + (time_t)ctx->options->grace_days *
			 SECS_PER_DAY, after);
	char *retired = keys_note_set(key->note, KEYS_NOTE_RETIRED, now);
	char *note = keys_note_set(retired, KEYS_NOTE_REMOVE_AFTER, after);
	char *retire_spec = dkim_strdup_printf("%s:%s", key->domain,
					       key->selector);
	int ret = keys_tables_set_note(ctx->tables, name, note, &error);

	if (ret < 0) {
		tool_error("cannot note the retirement of %s: %s", name,
			   error.text);
	} else {
		printf("%s stays in the KeyTable, and its record in DNS, "
		       "until %.10s; then: dkim-keys ... retire %s\n", name,
		       after, retire_spec);
	}
	free(retired);
	free(note);
	free(retire_spec);
	return ret;
}

/* Points the SigningTable at the new key instead of the domain's old key
 * of its type (or adds it for the domain, when there is none). */
static int
switch_to(struct context *ctx, const char *domain, const char *new_name)
{
	char **old = keys_in_use(ctx, domain), **changed;
	struct dkim_error error;
	int ret = EXIT_SUCCESS;

	for (size_t i = 0; ret == EXIT_SUCCESS &&
	     (i == 0 || old[i] != NULL); i++) {
		if (keys_tables_switch(ctx->tables, old[i], new_name, domain,
				       &changed, &error) < 0) {
			tool_error("cannot change %s: %s",
				   ctx->options->signingtable, error.text);
			ret = EXIT_FAILURE;
			break;
		}
		for (char **pattern = changed; *pattern != NULL; pattern++) {
			printf("SigningTable entry %s: %s%s%s\n", *pattern,
			       old[i] != NULL ? old[i] : "added ",
			       old[i] != NULL ? " -> " : "", new_name);
		}
		dkim_table_strings_free(&changed);
		if (old[i] == NULL)
			break;
		if (note_retired(ctx, old[i]) < 0)
			ret = EXIT_FAILURE;
	}
	dkim_table_strings_free(&old);
	return ret;
}

static int
cmd_rotate(struct context *ctx, const char *domain)
{
	const struct keys_key *key = find_pending(ctx, domain);
	struct dkim_error error;
	struct dns_check check;

	if (key != NULL) {
		if (ctx->options->selector_given &&
		    strcasecmp(key->selector, ctx->options->selector) != 0) {
			tool_error("%s is waiting to be switched to; switch "
				   "(--switch) or retire it first", key->name);
			return EXIT_FAILURE;
		}
		printf("Pending key %s (made by an earlier rotate)\n",
		       key->name);
	} else {
		char *name = make_key(ctx, domain);
		if (name == NULL)
			return EXIT_FAILURE;
		key = keys_tables_find(ctx->tables, name);
		free(name);
	}
	const dkim_privkey *privkey = load_key(ctx, key, &error);
	if (privkey == NULL) {
		tool_error("%s: %s", key->name, error.text);
		return EXIT_FAILURE;
	}
	print_record(key, privkey);

	/* copies: switching reads the tables again */
	char *name = dkim_strdup(key->name);
	check_dns(ctx, key->domain, key->selector, privkey, &check);
	int ret = EXIT_SUCCESS;
	if (check.state == DNS_MATCHES) {
		printf("DNS serves the record (DNSSEC: %s).\n",
		       dnssec_text(&check));
		if (ctx->options->switch_now)
			ret = switch_to(ctx, domain, name);
		else
			printf("Switch the SigningTable to it with: dkim-keys "
			       "... rotate %s --switch\n", domain);
	} else {
		printf("DNS: %s.\n", check.detail);
		if (ctx->options->switch_now) {
			printf("Not switching: DNS must serve the record "
			       "first (publish it, wait for the old answer's "
			       "TTL, and run this again).\n");
			ret = check.state == DNS_MISSING ||
				check.state == DNS_TEMPFAIL ?
				EXIT_TEMPFAIL : EXIT_FAILURE;
		} else {
			printf("Once it does: dkim-keys ... rotate %s "
			       "--switch\n", domain);
		}
	}
	free(check.detail);
	free(name);
	return ret;
}

/* ---- retire ---- */

static int
cmd_retire(struct context *ctx, const char *spec)
{
	const char *colon = strchr(spec, ':');
	size_t count;
	const struct keys_key *keys = keys_tables_keys(ctx->tables, &count);
	const struct keys_key *key = NULL;
	struct dkim_error error;

	if (colon == NULL)
		tool_usage_error(usage, "retire takes DOMAIN:SELECTOR, not %s",
				 spec);
	for (size_t i = 0; i < count; i++) {
		if (strncasecmp(keys[i].domain, spec,
				(size_t)(colon - spec)) == 0 &&
		    keys[i].domain[colon - spec] == '\0' &&
		    strcasecmp(keys[i].selector, colon + 1) == 0) {
			if (key != NULL) {
				tool_error("%s and %s both have d=%s s=%s: "
					   "remove one by hand", key->name,
					   keys[i].name, key->domain,
					   key->selector);
				return EXIT_FAILURE;
			}
			key = &keys[i];
		}
	}
	if (key == NULL) {
		tool_error("no key with d=%.*s s=%s in %s",
			   (int)(colon - spec), spec, colon + 1,
			   ctx->options->keytable);
		return EXIT_FAILURE;
	}
	if (keys_tables_key_in_use(ctx->tables, key->name)) {
		size_t signing_count;
		const struct keys_signing *signing =
			keys_tables_signing(ctx->tables, &signing_count);

		tool_error("%s is in use; rotate first.  SigningTable entries "
			   "that name it:", key->name);
		for (size_t i = 0; i < signing_count; i++) {
			for (char **name = signing[i].keynames; *name != NULL;
			     name++) {
				if (strcasecmp(*name, key->name) == 0)
					fprintf(stderr, "  %s\n",
						signing[i].pattern);
			}
		}
		return EXIT_FAILURE;
	}
	char *after = keys_note_get(key->note, KEYS_NOTE_REMOVE_AFTER);
	time_t t;
	if (after != NULL && keys_parse_time(after, &t) && t > ctx->now &&
	    !ctx->options->force) {
		tool_error("%s is in its grace period until %s: mail signed "
			   "with it may still be verified (--force removes it "
			   "now)", key->name, after);
		free(after);
		return EXIT_FAILURE;
	}
	free(after);

	char *name = dkim_strdup(key->name), *domain = dkim_strdup(key->domain);
	char *selector = dkim_strdup(key->selector);
	char *file = key->key_is_file ? dkim_strdup(key->key) : NULL;
	int ret = EXIT_SUCCESS;
	if (keys_tables_remove_key(ctx->tables, name, &error) < 0) {
		tool_error("cannot remove %s: %s", name, error.text);
		ret = EXIT_FAILURE;
	} else {
		printf("Removed %s from the KeyTable.\n"
		       "The DNS record %s._domainkey.%s can be deleted now.\n",
		       name, selector, domain);
		if (file != NULL)
			printf("The key file %s is no longer used.\n", file);
	}
	free(name);
	free(domain);
	free(selector);
	free(file);
	return ret;
}

/* ---- main ---- */

static void
parse_options(int argc, char *argv[], struct options *options)
{
	int opt;

	options->dns_timeout_msecs = TOOL_DNS_TIMEOUT_DEFAULT_SECS * 1000;
	options->bits = TOOL_KEYGEN_DEFAULT_RSA_BITS;
	options->grace_days = DEFAULT_GRACE_DAYS;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "t:b:s:h", long_options,
				  NULL)) != -1) {
		if (tool_resolver_option(&options->resolver, opt, optarg))
			continue;
		switch (opt) {
		case OPT_KEYTABLE:
			options->keytable = optarg;
			break;
		case OPT_SIGNINGTABLE:
			options->signingtable = optarg;
			break;
		case OPT_KEY_DIR:
			options->key_dir = optarg;
			break;
		case OPT_DNS_TIMEOUT:
			options->dns_timeout_msecs = 1000 *
				(unsigned)tool_parse_number(usage,
					"--dns-timeout", optarg, 1,
					TOOL_DNS_TIMEOUT_MAX_SECS);
			break;
		case OPT_DOVEADM_CONFIG:
			options->doveadm_config = optarg;
			break;
		case OPT_ALLOW_UNSAFE_KEY:
			options->privkey_flags |= DKIM_PRIVKEY_ALLOW_UNSAFE;
			break;
		case OPT_PANEL:
			options->panel = true;
			break;
		case 't':
			if (strcmp(optarg, "ed25519") == 0)
				options->ed25519 = true;
			else if (strcmp(optarg, "rsa") != 0)
				tool_usage_error(usage, "-t is rsa or ed25519");
			break;
		case 'b':
			options->bits = (unsigned)tool_parse_number(usage,
				"-b", optarg, DKIM_RSA_MIN_BITS,
				DKIM_RSA_MAX_BITS);
			options->bits_given = true;
			break;
		case 's':
			options->selector = optarg;
			options->selector_given = true;
			break;
		case OPT_GRACE:
			options->grace_days = (unsigned)tool_parse_number(
				usage, "--grace", optarg, 0, MAX_GRACE_DAYS);
			options->grace_given = true;
			break;
		case OPT_SWITCH:
			options->switch_now = true;
			break;
		case OPT_FORCE:
			options->force = true;
			break;
		case 'h':
			tool_help(usage);
		default:
			tool_bad_option(usage, argv);
		}
	}
}

/* Options that belong to one command are refused with the others. */
static void
check_command_options(const struct options *options, const char *command)
{
	bool rotate = strcmp(command, "rotate") == 0;

	if (options->panel && strcmp(command, "zone") != 0)
		tool_usage_error(usage, "--panel applies to zone only");
	if (!rotate && (options->ed25519 || options->bits_given ||
			options->selector_given || options->grace_given ||
			options->switch_now))
		tool_usage_error(usage, "-t, -b, -s, --grace and --switch "
				 "apply to rotate only");
	if (options->force && strcmp(command, "retire") != 0)
		tool_usage_error(usage, "--force applies to retire only");
	if (options->ed25519 && options->bits_given)
		tool_usage_error(usage, "-b applies to RSA keys only");
	if (options->selector_given &&
	    !dkim_selector_syntax_ok(options->selector))
		tool_usage_error(usage, "-s %s is not a selector (labels of "
				 "letters, digits, '-', '_')",
				 options->selector);
}

int
main(int argc, char *argv[])
{
	struct options options = { .keytable = NULL };
	struct context ctx = { .options = &options };
	struct dkim_error error;

	tool_name = "dkim-keys";
	parse_options(argc, argv, &options);
	if (options.keytable == NULL || options.signingtable == NULL)
		tool_usage_error(usage, "--keytable and --signingtable are "
				 "required");
	if (optind >= argc)
		tool_usage_error(usage, "no command (status, zone, rotate, "
				 "retire)");
	const char *command = argv[optind++];
	const char *operand = NULL;
	if (strcmp(command, "rotate") == 0 || strcmp(command, "retire") == 0) {
		if (optind >= argc)
			tool_usage_error(usage, "%s needs %s", command,
					 command[1] == 'o' ? "DOMAIN" :
					 "DOMAIN:SELECTOR");
		operand = argv[optind++];
	} else if (strcmp(command, "status") != 0 &&
		   strcmp(command, "zone") != 0) {
		tool_usage_error(usage, "unknown command %s", command);
	}
	tool_no_operands(usage, argc, argv);
	check_command_options(&options, command);
	if (strcmp(command, "rotate") == 0 &&
	    !dkim_domain_syntax_ok(operand))
		tool_usage_error(usage, "%s is not a domain name", operand);

	struct keys_table_options table_options = {
		.doveadm = "doveadm",
		.doveadm_config = options.doveadm_config,
	};
	if (keys_tables_open(options.keytable, options.signingtable,
			     &table_options, &ctx.tables, &error) < 0) {
		tool_error("%s", error.text);
		return EXIT_FAILURE;
	}
	if (strcmp(command, "rotate") == 0 && options.key_dir == NULL &&
	    !keys_tables_keys_in_dict(ctx.tables))
		tool_usage_error(usage, "rotate with a KeyTable file needs "
				 "--key-dir for the new key");
	ctx.keys = dkim_keytable_cache_new();
	ctx.now = time(NULL);
	if (strcmp(command, "status") == 0 || strcmp(command, "rotate") == 0)
		ctx.resolver = tool_resolver_create(&options.resolver, usage);

	int ret;
	if (strcmp(command, "status") == 0)
		ret = cmd_status(&ctx);
	else if (strcmp(command, "zone") == 0)
		ret = cmd_zone(&ctx);
	else if (strcmp(command, "rotate") == 0)
		ret = cmd_rotate(&ctx, operand);
	else
		ret = cmd_retire(&ctx, operand);

	dkim_resolver_free(&ctx.resolver);
	dkim_keytable_cache_free(&ctx.keys);
	keys_tables_free(&ctx.tables);
	return ret;
}

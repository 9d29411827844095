/* KeyTable and SigningTable: the formats and lookup semantics of OpenDKIM
 * (opendkim.conf(5)), with tables as the OpenDKIM guides write them. */
#include "dkim-keytable.h"
#include "dkim-sign-from.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

/* Verbatim in the guides' format: refile: wildcards, several domains,
 * RSA plus Ed25519 for one of them, a '%' entry for hosted domains. */
static const char keytable_text[] =
	"# KeyTable\n"
	"default._domainkey.example.com example.com:default:/etc/opendkim/keys/example.com/default.private\n"
	"ed._domainkey.example.com      example.com:ed:/etc/opendkim/keys/example.com/ed.private\n"
	"mail._domainkey.example.net\texample.net:mail:/etc/opendkim/keys/example.net/mail.private\r\n"
	"\n"
	"   # indented comment\n"
	"hosted  %:hosted:/etc/opendkim/keys/%/hosted.private   # per domain\n";

static const char signingtable_refile[] =
	"# SigningTable\n"
	"*@example.com default._domainkey.example.com\n"
	"*@example.com ed._domainkey.example.com\n"
	"ceo@example.net mail._domainkey.example.net ceo@example.net\n"
	"*@example.net mail._domainkey.example.net\n"
	"*@*.example.org hosted @%\n"
	"* hosted\n";

static struct dkim_keytable *
parse_keytable(const char *text)
{
	struct dkim_keytable *table = NULL;
	struct dkim_error error;

	if (dkim_keytable_parse(text, strlen(text), "KeyTable", &table,
				&error) < 0)
		tap_diag("KeyTable: %s", error.text);
	return table;
}

static struct dkim_signingtable *
parse_signingtable(const char *text, enum dkim_table_kind kind)
{
	struct dkim_signingtable *table = NULL;
	struct dkim_error error;

	if (dkim_signingtable_parse(text, strlen(text), kind, "SigningTable",
				    &table, &error) < 0)
		tap_diag("SigningTable: %s", error.text);
	return table;
}

/* The selected keys as "keyname|d|s|key|i", comma-separated. */
static char *
select_summary(const struct dkim_signingtable *st,
	       const struct dkim_keytable *kt, const char *address,
	       bool all_matches)
{
	struct dkim_key_choice *choices;
	struct dkim_error error;
	size_t count;
	static char summary[2048];

	switch (dkim_keytable_select(st, kt, address, all_matches, &choices,
				     &count, &error)) {
	case DKIM_KEYTABLE_SELECT_ERROR:
		snprintf(summary, sizeof(summary), "error: %s", error.text);
		return summary;
	case DKIM_KEYTABLE_SELECT_BAD_DOMAIN:
		snprintf(summary, sizeof(summary), "bad domain: %s",
			 error.text);
		tap_ok(choices == NULL && count == 0,
		       "a bad domain chooses no key");
		return summary;
	case DKIM_KEYTABLE_SELECT_OK:
		break;
	}
	summary[0] = '\0';
	for (size_t i = 0; i < count; i++) {
		size_t used = strlen(summary);
		snprintf(summary + used, sizeof(summary) - used,
			 "%s%s|%s|%s|%s%s|%s", i > 0 ? "," : "",
			 choices[i].keyname, choices[i].domain,
			 choices[i].selector,
			 choices[i].key_is_file ? "" : "inline:",
			 choices[i].key,
			 choices[i].identity != NULL ? choices[i].identity : "-");
	}
	dkim_key_choices_free(&choices, count);
	return summary;
}

static void
test_spec(void)
{
	enum dkim_table_kind kind;
	const char *path;
	struct dkim_error error;

	tap_ok(dkim_table_spec_parse("refile:/etc/opendkim/SigningTable",
				     &kind, &path, &error) == 0 &&
	       kind == DKIM_TABLE_REFILE &&
	       strcmp(path, "/etc/opendkim/SigningTable") == 0,
	       "refile: prefix");
	tap_ok(dkim_table_spec_parse("file:/etc/opendkim/KeyTable", &kind,
				     &path, &error) == 0 &&
	       kind == DKIM_TABLE_FILE &&
	       strcmp(path, "/etc/opendkim/KeyTable") == 0, "file: prefix");
	tap_ok(dkim_table_spec_parse("/etc/opendkim/a:b", &kind, &path,
				     &error) == 0 && kind == DKIM_TABLE_FILE &&
	       strcmp(path, "/etc/opendkim/a:b") == 0,
	       "a bare absolute path is a file, colons and all");
	tap_ok(dkim_table_spec_parse("db:/etc/opendkim/KeyTable.db", &kind,
				     &path, &error) < 0 &&
	       strstr(error.text, "'db:'") != NULL,
	       "db: data sets are refused by name");
	tap_ok(dkim_table_spec_parse("refile:", &kind, &path, &error) < 0,
	       "refile: without a path is refused");
	tap_ok(dkim_table_spec_parse("dict:proxy::dkim", &kind, &path,
				     &error) == 0 && kind == DKIM_TABLE_DICT &&
	       strcmp(path, "proxy::dkim") == 0, "dict: prefix");
	tap_ok(dkim_table_spec_parse("dict:", &kind, &path, &error) < 0 &&
	       strstr(error.text, "no dict name") != NULL,
	       "dict: without a name is refused");
}

static void
test_keytable(void)
{
	struct dkim_keytable *table = parse_keytable(keytable_text);
	struct dkim_error error;

	tap_ok(table != NULL, "guides-style KeyTable parses");
	if (table == NULL)
		return;
	const struct dkim_keytable_entry *entry =
		dkim_keytable_lookup(table, "mail._domainkey.example.net");
	tap_ok(entry != NULL && strcmp(entry->domain, "example.net") == 0 &&
	       strcmp(entry->selector, "mail") == 0 &&
	       strcmp(entry->key,
		      "/etc/opendkim/keys/example.net/mail.private") == 0 &&
	       entry->line == 4,
	       "tab separator and CRLF line end");
	entry = dkim_keytable_lookup(table, "hosted");
	tap_ok(entry != NULL &&
	       strcmp(entry->key, "/etc/opendkim/keys/%/hosted.private") == 0,
	       "trailing comment is cut off");
	tap_ok(dkim_keytable_count(table) == 4 &&
	       strcmp(dkim_keytable_entry(table, 3)->name, "hosted") == 0 &&
	       dkim_keytable_entry(table, 4) == NULL,
	       "entries in file order");
	tap_ok(dkim_keytable_lookup(table, "DEFAULT._domainkey.Example.COM") !=
	       NULL, "names compare case-insensitively");
	tap_ok(dkim_keytable_lookup(table, "nothere") == NULL,
	       "unknown name");
	dkim_keytable_free(&table);
	tap_ok(table == NULL, "free clears the pointer");

	tap_ok(dkim_keytable_parse("k example.com:sel\n", 18, "KT", &table,
				   &error) < 0 &&
	       strstr(error.text, "KT line 1") != NULL &&
	       strstr(error.text, "DOMAIN:SELECTOR:KEY") != NULL,
	       "missing key field: error names file, line and format");
	tap_ok(dkim_keytable_parse("\n\nlonely\n", 9, "KT", &table,
				   &error) < 0 &&
	       strstr(error.text, "line 3") != NULL,
	       "a name without a value is an error");
	tap_ok(dkim_keytable_parse("k ::/x\n", 7, "KT", &table, &error) < 0,
	       "empty domain and selector are errors");
	tap_ok(dkim_keytable_parse("k a:b:c\0\n", 9, "KT", &table,
				   &error) < 0, "NUL byte is refused");
	tap_ok(dkim_keytable_parse("", 0, "KT", &table, &error) == 0 &&
	       dkim_keytable_lookup(table, "k") == NULL,
	       "an empty table is valid");
	dkim_keytable_free(&table);
}

static void
test_wildcards(void)
{
	tap_ok(dkim_wildcard_match("*@example.com", "joe@example.com"),
	       "*@domain");
	tap_ok(!dkim_wildcard_match("*@example.com", "joe@sub.example.com"),
	       "*@domain does not cover subdomains");
	tap_ok(!dkim_wildcard_match("*@example.com", "joe@example.com.evil"),
	       "the pattern is anchored at the end");
	tap_ok(dkim_wildcard_match("*@*.example.com", "a@b.c.example.com"),
	       "two stars");
	tap_ok(dkim_wildcard_match("*", ""), "* matches the empty string");
	tap_ok(dkim_wildcard_match("JOE@Example.com", "joe@EXAMPLE.COM"),
	       "case-insensitive");
	tap_ok(!dkim_wildcard_match("joe.x@example.com", "joeax@example.com"),
	       "'.' is literal, not a regex");
	tap_ok(dkim_wildcard_match("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaab") &&
	       !dkim_wildcard_match("*a*a*a*a*b",
				    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
	       "backtracking patterns");
}

static void
test_refile(void)
{
	struct dkim_keytable *kt = parse_keytable(keytable_text);
	struct dkim_signingtable *st =
		parse_signingtable(signingtable_refile, DKIM_TABLE_REFILE);

	tap_ok(kt != NULL && st != NULL, "tables parse");
	if (kt == NULL || st == NULL)
		return;
	tap_is_str(select_summary(st, kt, "joe@example.com", false),
		   "default._domainkey.example.com|example.com|default|"
		   "/etc/opendkim/keys/example.com/default.private|-,"
		   "ed._domainkey.example.com|example.com|ed|"
		   "/etc/opendkim/keys/example.com/ed.private|-",
		   "a pattern on two lines gives two signatures (RSA + "
		   "Ed25519), the catch-all does not add a third");
	tap_is_str(select_summary(st, kt, "Joe@EXAMPLE.com", false),
		   select_summary(st, kt, "joe@example.com", false),
		   "case does not matter");
	tap_is_str(select_summary(st, kt, "ceo@example.net", false),
		   "mail._domainkey.example.net|example.net|mail|"
		   "/etc/opendkim/keys/example.net/mail.private|"
		   "ceo@example.net",
		   "first match in file order wins, with its signer (i=)");
	tap_is_str(select_summary(st, kt, "ceo@example.net", true),
		   "mail._domainkey.example.net|example.net|mail|"
		   "/etc/opendkim/keys/example.net/mail.private|"
		   "ceo@example.net,"
		   "hosted|example.net|hosted|"
		   "/etc/opendkim/keys/example.net/hosted.private|-",
		   "all matches: same key once, then the catch-all with '%' "
		   "replaced by the sender's domain");
	tap_is_str(select_summary(st, kt, "x@shop.example.org", false),
		   "hosted|shop.example.org|hosted|"
		   "/etc/opendkim/keys/shop.example.org/hosted.private|"
		   "@shop.example.org",
		   "'%' in KeyTable domain, key path and signer");
	tap_is_str(select_summary(st, kt, "x@unrelated.example", false),
		   "hosted|unrelated.example|hosted|"
		   "/etc/opendkim/keys/unrelated.example/hosted.private|-",
		   "catch-all");
	dkim_signingtable_free(&st);

	st = parse_signingtable("*@example.com missing.key\n",
				DKIM_TABLE_REFILE);
	tap_ok(strstr(select_summary(st, kt, "a@example.com", false),
		      "error: SigningTable line 1 (*@example.com) names key "
		      "'missing.key', which is not in the KeyTable") != NULL,
	       "a key name missing from the KeyTable is an error");
	tap_is_str(select_summary(st, kt, "a@example.net", false), "",
		   "no match: nothing to sign, no error");
	dkim_signingtable_free(&st);

	st = parse_signingtable("*@example.com % other@example.net\n"
				"*@example.com:x\n", DKIM_TABLE_REFILE);
	tap_ok(st == NULL, "a pattern without a key name is an error");
	st = parse_signingtable("*@example.com %:other@example.net\n",
				DKIM_TABLE_REFILE);
	struct dkim_keytable *by_domain = parse_keytable(
		"example.com example.com:s1:MC4CAQAwBQYDK2VwBCIEIHEG\n");
	tap_is_str(select_summary(st, by_domain, "a@example.com", false),
		   "example.com|example.com|s1|inline:MC4CAQAwBQYDK2VwBCIEIHEG|-",
		   "'%' key name, inline key, and an i= outside d= is "
		   "dropped as OpenDKIM does");
	dkim_keytable_free(&by_domain);
	dkim_signingtable_free(&st);
	dkim_keytable_free(&kt);
}

static void
test_file_lookup_order(void)
{
	struct dkim_keytable *kt = parse_keytable(
		"k1 d.example:k1:/k\nk2 d.example:k2:/k\nk3 d.example:k3:/k\n"
		"k4 d.example:k4:/k\nk5 d.example:k5:/k\nk6 d.example:k6:/k\n"
		"k7 d.example:k7:/k\n");
	struct dkim_signingtable *st = parse_signingtable(
		"*                       k7\n"
		"joe@*                   k6\n"
		".example.com            k5\n"
		"joe@.example.com        k4\n"
		"mail.example.com        k3\n"
		"joe@mail.example.com    k2\n", DKIM_TABLE_FILE);
	const struct dkim_signingtable_entry *matches[8];

	tap_ok(dkim_signingtable_count(st) == 6 &&
	       strcmp(dkim_signingtable_entry(st, 1)->keyname, "k6") == 0 &&
	       dkim_signingtable_entry(st, 6) == NULL,
	       "file: entries in file order");
	size_t count = dkim_signingtable_match(st, "joe@mail.example.com",
					       true, matches, 8);
	tap_is_int(count, 6, "file: every form matches");
	tap_ok(count == 6 && strcmp(matches[0]->keyname, "k2") == 0 &&
	       strcmp(matches[1]->keyname, "k3") == 0 &&
	       strcmp(matches[2]->keyname, "k4") == 0 &&
	       strcmp(matches[3]->keyname, "k5") == 0 &&
	       strcmp(matches[4]->keyname, "k6") == 0 &&
	       strcmp(matches[5]->keyname, "k7") == 0,
	       "file: OpenDKIM's order user@host, host, user@.parent, "
	       ".parent, user@*, * regardless of file order");
	tap_is_str(select_summary(st, kt, "ann@mail.example.com", false),
		   "k3|d.example|k3|/k|-", "file: host wins for other users");
	tap_is_str(select_summary(st, kt, "ann@www.example.com", false),
		   "k5|d.example|k5|/k|-", "file: .parent");
	tap_is_str(select_summary(st, kt, "joe@x.example.org", false),
		   "k6|d.example|k6|/k|-", "file: user@*");
	tap_is_str(select_summary(st, kt, "ann@x.example.org", false),
		   "k7|d.example|k7|/k|-", "file: *");
	tap_is_int(dkim_signingtable_match(st, "joe@mail.example.com", true,
					   matches, 2), 6,
		   "the count is the total even when fewer fit");
	dkim_signingtable_free(&st);

	st = parse_signingtable("*@example.com k1\n", DKIM_TABLE_FILE);
	tap_is_str(select_summary(st, kt, "a@example.com", false), "",
		   "file: '*' in a key is literal, not a wildcard");
	dkim_signingtable_free(&st);
	dkim_keytable_free(&kt);
}

/* The sender's domain comes from the message: where it stands for '%'
 * (in a key file name, above all) only a valid domain name is put in. */
static void
test_sender_domain(void)
{
	static const struct {
		const char *address, *problem;
	} bad[] = {
		{ "a@../../etc", "'..'" },
		{ "a@example.com/../../etc", "'/'" },
		{ "a@a/../../etc", "'/' and '..'" },
		{ "a@example..com", "an empty label" },
		{ "a@.example.com", "a leading '.'" },
		{ "a@example.com.", "a trailing '.'" },
		{ "a@", "nothing" },
		{ "a@[192.0.2.1]", "an address literal" },
		{ "a@exa%mple.com", "'%'" },
		{ "a@localhost", "a single label" },
	};
	struct dkim_keytable *kt = parse_keytable(keytable_text);
	struct dkim_signingtable *st =
		parse_signingtable("* hosted\n", DKIM_TABLE_REFILE);
	char overlong[300], address[320];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *summary = select_summary(st, kt, bad[i].address,
						     true);
		tap_ok(strncmp(summary, "bad domain: the From domain '", 29) == 0 &&
		       strstr(summary, "is not a valid domain name, so it "
			      "cannot stand for '%' in KeyTable line 7 "
			      "(hosted): no key applies") != NULL,
		       "'%%' is not replaced by a domain with %s",
		       bad[i].problem);
	}
	/* 4 * 63 + 3 dots = 255 > 253 */
	memset(overlong, 'a', sizeof(overlong));
	for (size_t i = 63; i < 255; i += 64)
		overlong[i] = '.';
	overlong[255] = '\0';
	snprintf(address, sizeof(address), "a@%s", overlong);
	tap_ok(strncmp(select_summary(st, kt, address, false),
		       "bad domain: the From domain 'aaaa", 33) == 0 &&
	       strstr(select_summary(st, kt, address, false),
		      "...' is not a valid domain name") != NULL,
	       "'%%' is not replaced by a domain of 255 characters (quoted "
	       "cut short)");
	overlong[253] = '\0';
	overlong[252] = 'b';
	snprintf(address, sizeof(address), "a@%s", overlong);
	tap_ok(strstr(select_summary(st, kt, address, false),
		      "|/etc/opendkim/keys/aaaa") != NULL,
	       "a domain of 253 characters is put in");
	dkim_signingtable_free(&st);

	st = parse_signingtable("* %\n"
				"* other\n", DKIM_TABLE_REFILE);
	struct dkim_keytable *by_domain = parse_keytable(
		"example.com example.com:s:/k/example.com\n"
		"other example.net:s:/k/other\n");
	tap_ok(strstr(select_summary(st, by_domain, "a@../example.com",
				     true),
		      "bad domain: the From domain '../example.com' is not a "
		      "valid domain name, so it cannot stand for '%' in "
		      "SigningTable line 1 (*): no key applies") != NULL,
	       "a '%%' key name with a bad domain: no key, and no other "
	       "match's key either");
	dkim_signingtable_free(&st);
	st = parse_signingtable("* other %@%\n", DKIM_TABLE_REFILE);
	tap_ok(strstr(select_summary(st, by_domain, "a@x/y", false),
		      "bad domain: the From domain 'x/y' is not a valid domain "
		      "name, so it cannot stand for '%' in SigningTable line 1")
	       != NULL, "a '%%' in the signer with a bad domain: no key");
	dkim_signingtable_free(&st);
	st = parse_signingtable("* other\n", DKIM_TABLE_REFILE);
	tap_is_str(select_summary(st, by_domain, "a@x/y", false),
		   "other|example.net|s|/k/other|-",
		   "an entry without '%' does not use the domain: signed");
	dkim_signingtable_free(&st);
	dkim_keytable_free(&by_domain);
	dkim_keytable_free(&kt);
}

static void
test_pattern_warnings(void)
{
	struct dkim_signingtable *st = parse_signingtable(
		"*@tenant.com k\n"
		"*.tenant.com k\n"
		"*@*.tenant.com k\n"
		"jo*@tenant.com k\n"
		"* k\n"
		"*tenant.com k\n"
		"joe@*tenant.com k\n"
		"*@mail*tenant.com k\n", DKIM_TABLE_REFILE);
	const char *const *warnings = dkim_signingtable_warnings(st);

	tap_is_str(warnings[0], "SigningTable line 6: the pattern "
		   "'*tenant.com' also matches other domains ending in "
		   "'tenant.com', such as evil-tenant.com; anchor it: "
		   "'*@tenant.com' matches that domain, '*.tenant.com' its "
		   "subdomains (give both for both)",
		   "'*tenant.com' is warned about, with the anchored forms");
	tap_is_str(warnings[1], "SigningTable line 7: the pattern "
		   "'joe@*tenant.com' also matches other domains ending in "
		   "'tenant.com', such as evil-tenant.com; anchor it: "
		   "'joe@tenant.com' matches that domain, 'joe@*.tenant.com' "
		   "its subdomains (give both for both)",
		   "so is 'joe@*tenant.com'");
	tap_is_str(warnings[2], "SigningTable line 8: in the pattern "
		   "'*@mail*tenant.com', the '*' before 'tenant.com' also "
		   "matches names that merely end in it; put '@' or '.' right "
		   "after a '*' that stands for whole labels",
		   "and a '*' inside a label");
	tap_ok(warnings[3] == NULL,
	       "no warning for '*@', '*.', a '*' in the local part, or '*'");
	tap_ok(dkim_signingtable_match(st, "x@evil-tenant.com", false, NULL,
				       0) == 1,
	       "the warned pattern still works as OpenDKIM's does");
	dkim_signingtable_free(&st);

	st = parse_signingtable("*tenant.com k\n", DKIM_TABLE_FILE);
	tap_ok(dkim_signingtable_warnings(st)[0] == NULL,
	       "no warning in a file: table ('*' is literal there)");
	dkim_signingtable_free(&st);

	char text[64 * 30] = "";
	for (unsigned i = 0; i < 25; i++) {
		size_t used = strlen(text);
		snprintf(text + used, sizeof(text) - used, "*t%u.example k\n",
			 i);
	}
	st = parse_signingtable(text, DKIM_TABLE_REFILE);
	warnings = dkim_signingtable_warnings(st);
	size_t count = 0;
	while (warnings[count] != NULL)
		count++;
	tap_ok(count == DKIM_TABLE_MAX_WARNINGS + 1 &&
	       strcmp(warnings[DKIM_TABLE_MAX_WARNINGS],
		      "SigningTable: 15 more lines with such patterns") == 0,
	       "at most %d warnings, then one that counts the rest",
	       DKIM_TABLE_MAX_WARNINGS);
	dkim_signingtable_free(&st);
}

/* The rule the submission plugin and dkim-milter share. */
static void
test_sign_from(void)
{
	const char *const patterns[] = { "*@example.net", "*.example.org",
					 NULL };

	tap_ok(dkim_sign_from_permitted("alice@example.com",
					"anyone@EXAMPLE.com", NULL),
	       "sign-from: the login's own domain, any local part");
	tap_ok(!dkim_sign_from_permitted("alice@example.com",
					 "alice@sub.example.com", NULL),
	       "sign-from: not its subdomains");
	tap_ok(!dkim_sign_from_permitted("alice", "alice@example.com", NULL),
	       "sign-from: a login without a domain owns none");
	tap_ok(!dkim_sign_from_permitted(NULL, "x@example.com", NULL),
	       "sign-from: no login, no patterns: nothing");
	tap_ok(dkim_sign_from_permitted("alice", "x@example.net", patterns) &&
	       dkim_sign_from_permitted("alice", "x@shop.example.org",
					patterns),
	       "sign-from: address and domain patterns");
	tap_ok(!dkim_sign_from_permitted("alice", "x@example.org", patterns),
	       "sign-from: a domain pattern is matched as a whole");
	tap_ok(!dkim_sign_from_permitted("alice@example.com", "example.com",
					 NULL) &&
	       !dkim_sign_from_permitted("alice@", "x@", NULL),
	       "sign-from: an address without a domain never matches");
}

int
main(void)
{
	test_spec();
	test_keytable();
	test_wildcards();
	test_refile();
	test_file_lookup_order();
	test_sender_domain();
	test_pattern_warnings();
	test_sign_from();
	return tap_done();
}

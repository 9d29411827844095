/* The author domain (dkim_author_domain()): RFC 5322 address syntax with
 * its obsolete forms, the spoofing reproducers of the security review,
 * control and 8-bit bytes, groups and lists, bounded work on hostile
 * nesting; and what the verifier and its Authentication-Results make of
 * a message without an author domain. */
#include "dkim-private.h"
#include "tap.h"
#include "test-keys.h"

#include <stdlib.h>
#include <string.h>

/* `len` counts the value's bytes, NULs included. */
static void
author_is_len(const char *value, size_t len, enum dkim_author_status status,
	      const char *domain, const char *name)
{
	char *got = NULL;
	enum dkim_author_status got_status =
		dkim_author_domain(value, len, &got);

	tap_ok(got_status == status &&
	       (got != NULL && domain != NULL ? strcmp(got, domain) == 0 :
		got == domain), "%s", name);
	if (got_status != status || (got == NULL) != (domain == NULL) ||
	    (got != NULL && strcmp(got, domain) != 0))
		tap_diag("got %s (%s), expected %s (%s)",
			 got != NULL ? got : "(none)",
			 dkim_author_status_text(got_status),
			 domain != NULL ? domain : "(none)",
			 dkim_author_status_text(status));
	free(got);
}

static void
author_is(const char *value, enum dkim_author_status status,
	  const char *domain)
{
	char *name = dkim_sanitize(value, strlen(value));

	author_is_len(value, strlen(value), status, domain, name);
	free(name);
}

#define found(value, domain) author_is(value, DKIM_AUTHOR_FOUND, domain)
#define none(value, status) author_is(value, DKIM_AUTHOR_##status, NULL)

/* The reproducers of the review: a reader (Sieve's address test, IMAP's
 * ENVELOPE) takes the first mailbox, bank.example, whatever comes after
 * it. */
static void
test_spoofing(void)
{
	none(" alerts@bank.example@evil.example", SYNTAX);
	none(" alerts@bank.example x@evil.example", SYNTAX);
	none(" <a@bank.example,x@evil.example>", SYNTAX);
	none(" <a@bank.example x@evil.example>", SYNTAX);
	none(" alerts@bank.example <x@evil.example>", SYNTAX);
	none(" Bank <alerts@bank.example> x@evil.example", SYNTAX);
	none(" Bank <alerts@bank.example> <x@evil.example>", SYNTAX);
	none(" <alerts@bank.example>x@evil.example", SYNTAX);
	none(" alerts@bank.example, x@evil.example", SEVERAL_MAILBOXES);
	none(" Bank <alerts@bank.example>, <x@evil.example>",
	     SEVERAL_MAILBOXES);
	none(" alerts@bank.example;x@evil.example", SYNTAX);

	static const char nul_space[] = " a@bank.example\0 x@evil.example";
	author_is_len(nul_space, sizeof(nul_space) - 1, DKIM_AUTHOR_SYNTAX,
		      NULL, "a NUL byte before a second address");
	static const char nul_comma[] = "a@bank.example\0, b@evil.example";
	author_is_len(nul_comma, sizeof(nul_comma) - 1, DKIM_AUTHOR_SYNTAX,
		      NULL, "a list behind a NUL byte");
	static const char nul_end[] = " a@bank.example\0";
	author_is_len(nul_end, sizeof(nul_end) - 1, DKIM_AUTHOR_SYNTAX,
		      NULL, "a NUL byte after the only address");
	static const char nul_comment[] = " a@bank.example (\0)";
	author_is_len(nul_comment, sizeof(nul_comment) - 1,
		      DKIM_AUTHOR_SYNTAX, NULL, "a NUL byte in a comment");

	/* A line break that does not fold ends the field for a reader. */
	none(" a@bank.example\r\nFrom: x@evil.example", SYNTAX);
	none(" a@bank.example\nx@evil.example", SYNTAX);
	none(" a@bank.example\rx@evil.example", SYNTAX);
	none(" a@bank.example\r\n\r\n", SYNTAX);
}

static void
test_valid_forms(void)
{
	found(" Joe <joe@Example.COM>", "example.com");
	found(" \"Name, Inc.\" <a@b.example>", "b.example");
	found(" joe@example.com (Joe)", "example.com");
	found(" \"Joe <x@evil.example>\" <joe@example.com>", "example.com");
	found(" (comment <x@evil.example>) joe@example.com", "example.com");
	found(" (a (nested \\) comment, x@evil.example) here) joe@example.com",
	      "example.com");
	found(" \"a@b, c@d\"@example.com", "example.com");
	found(" \"J\\\"oe\" <joe@example.com>", "example.com");
	found(" <joe@example.com>", "example.com");
	found("<joe@example.com>", "example.com");
	found(" joe@example.com\r\n", "example.com");
	found(" Joe\r\n <joe@example.net>\r\n", "example.net");
	found(" Joe\n\t<joe@example.net>\n", "example.net");
	found(" \"Folded\r\n quoted\" <joe@example.net>", "example.net");
	found(" joe@sub.EXAMPLE.co.uk", "sub.example.co.uk");
	found(" joe@mail_1.example.com", "mail_1.example.com");
}

/* RFC 5322 §4.4: readers must accept the obsolete syntax. */
static void
test_obsolete_forms(void)
{
	found(" John Q. Public <jqp@example.com>", "example.com");
	found(" <@route.example,@other.example:joe@example.com>",
	      "example.com");
	found(" Joe <,@route.example, ,@[192.0.2.1]:joe@example.com>",
	      "example.com");
	found(" joe . doe @ example . com", "example.com");
	found(" joe(c)@(c)example(c).(c)com(c)", "example.com");
	found(" \"joe\".doe@example.com", "example.com");
	found(" Joe \"Q\" Public <jqp@example.com>", "example.com");
}

static void
test_text_bytes(void)
{
	found(" J\xc3\xbcrgen <j@example.de>", "example.de");
	found(" \"J\xfcrgen\" <j@example.de>", "example.de");
	found(" j\xc3\xbc@example.de", "example.de");
	found(" (K\xc3\xa4se) j@example.de", "example.de");
	none(" j@b\xc3\xa4nk.example", NOT_A_DOMAIN);
	none(" \"Jo\x01e\" <joe@example.com>", SYNTAX);
	none(" (c\x7f) joe@example.com", SYNTAX);
	none(" joe@exa\x01mple.com", SYNTAX);
	none(" Jo\x1b[2Je <joe@example.com>", SYNTAX);
	none(" \"a\\\x01\" <joe@example.com>", SYNTAX);
}

/* dkim_author_address(): the local part as the text it stands for. */
static void
local_part_is(const char *value, const char *local_part)
{
	char *got_local = NULL, *got_domain = NULL;
	enum dkim_author_status status =
		dkim_author_address(value, strlen(value), &got_local,
				    &got_domain);
	char *name = dkim_sanitize(value, strlen(value));

	tap_ok(local_part != NULL ?
	       status == DKIM_AUTHOR_FOUND && got_local != NULL &&
	       strcmp(got_local, local_part) == 0 :
	       status != DKIM_AUTHOR_FOUND && got_local == NULL,
	       "local part of %s: %s", name,
	       local_part != NULL ? local_part : "none");
	if (got_local != NULL && (local_part == NULL ||
				  strcmp(got_local, local_part) != 0))
		tap_diag("got '%s'", got_local);
	free(name);
	free(got_local);
	free(got_domain);
}

static void
test_local_parts(void)
{
	local_part_is(" Joe <Joe.Q@Example.COM>", "Joe.Q");
	local_part_is(" \"j doe\"@example.com", "j doe");
	local_part_is(" \"a\\\"b\"(c)@example.com", "a\"b");
	local_part_is(" \"a@b, c@d\"@example.com", "a@b, c@d");
	local_part_is(" joe . doe (x) @ example . com", "joe.doe");
	local_part_is(" \"joe\".doe@example.com", "joe.doe");
	local_part_is(" \"Folded\r\n quoted\"@example.net", "Folded quoted");
	local_part_is(" \"\"@example.com", "");
	local_part_is(" <@route.example:bob@example.com>", "bob");
	local_part_is(" \"Eve <eve@evil.example>\" <joe@example.com>", "joe");
	local_part_is(" joe@example.com, eve@example.com", NULL);
	local_part_is(" joe@[192.0.2.1]", NULL);
}

static void
test_no_author(void)
{
	none("", NO_MAILBOX);
	none(" \r\n", NO_MAILBOX);
	none(" (just a comment)", NO_MAILBOX);
	none(" a@example.com, a@example.com", SEVERAL_MAILBOXES);
	none(" A <a@example.com>, B <b@example.org>", SEVERAL_MAILBOXES);
	none(" group: a@example.com;", GROUP);
	none(" Bank: alerts@bank.example;", GROUP);
	none(" undisclosed-recipients:;", GROUP);
	none(" g: , a@example.com, ;", GROUP);
	none(" Bank: alerts@bank.example;, x@evil.example", GROUP);
	none(" x@evil.example, Bank: alerts@bank.example;", GROUP);
	none(" a: b: c@example.com;;", SYNTAX);
	none(" <joe@[192.0.2.1]>", NOT_A_DOMAIN);
	none(" joe@localhost", NOT_A_DOMAIN);
	none(" joe@-", NOT_A_DOMAIN);
	none(" joe@192.0.2.1", NOT_A_DOMAIN);
	found(" joe@192.0.2.example", "192.0.2.example");
	found(" joe@example.x1", "example.x1");
}

static void
test_syntax_errors(void)
{
	none(" no address", SYNTAX);
	none(" joe", SYNTAX);
	none(" joe@", SYNTAX);
	none(" @example.com", SYNTAX);
	none(" joe@example.com.", SYNTAX);
	none(" joe@.example.com", SYNTAX);
	none(" joe@example..com", SYNTAX);
	none(" .joe@example.com", SYNTAX);
	none(" joe.@example.com", SYNTAX);
	none(" jo..e@example.com", SYNTAX);
	none(" jo e@example.com", SYNTAX);
	none(" joe@\"example.com\"", SYNTAX);
	none(" joe@[192.0.2.1", SYNTAX);
	none(" a@example.com,", SYNTAX);
	none(" , a@example.com", SYNTAX);
	none(" a@example.com,, b@example.org", SYNTAX);
	none(" a@example.com;", SYNTAX);
	none(" Joe <joe@example.com", SYNTAX);
	none(" Joe joe@example.com>", SYNTAX);
	none(" <>", SYNTAX);
	none(" Joe <>", SYNTAX);
	none(" <joe>", SYNTAX);
	none(" <@route.example:joe@example.com", SYNTAX);
	none(" <@route.example joe@example.com>", SYNTAX);
	none(" \"unterminated <a@b.example>", SYNTAX);
	none(" (unterminated a@b.example", SYNTAX);
	none(" a@b.example)", SYNTAX);
	none(" a@b.example\\", SYNTAX);
	none(" .Joe <joe@example.com>", SYNTAX);
	none(" Joe <joe@example.com> (c) <x@evil.example>", SYNTAX);
	none(" group: a@example.com", SYNTAX);
}

static void
test_limits(void)
{
	/* 253 octets is the longest domain name, 63 the longest label. */
	char value[1024];
	char label[64];

	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(value, sizeof(value), " j@%s.%s.%s.%.57s.com", label, label,
		 label, label);
	author_is(value, DKIM_AUTHOR_FOUND, value + 3);
	snprintf(value, sizeof(value), " j@%s.%s.%s.%.58s.com", label, label,
		 label, label);
	author_is(value, DKIM_AUTHOR_NOT_A_DOMAIN, NULL);
	snprintf(value, sizeof(value), " j@%sa.example", label);
	author_is(value, DKIM_AUTHOR_NOT_A_DOMAIN, NULL);

	/* Hostile nesting: no recursion, one pass. */
	size_t depth = 1000000;
	char *deep = malloc(2 * depth + 32);
	memset(deep, '(', depth);
	memset(deep + depth, ')', depth);
	strcpy(deep + 2 * depth, " a@b.example");
	author_is_len(deep, strlen(deep), DKIM_AUTHOR_FOUND, "b.example",
		      "a comment nested a million deep");
	deep[2 * depth - 1] = ' ';
	author_is_len(deep, strlen(deep), DKIM_AUTHOR_SYNTAX, NULL,
		      "the same comment left open");
	free(deep);
}

struct verified {
	enum dkim_author_status status;
	char *domain;
	char *authres;
};

static struct verified
verify(const char *headers, bool dispute)
{
	static const char signature[] =
		"DKIM-Signature: v=1; a=rsa-sha256; d=evil.example; s=sel; "
		"h=from; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; "
		"b=AbC/dEf+Gh1234==\r\n";
	struct dkim_verify_config config;
	struct test_dns no_keys = { .count = 0 };
	dkim_resolver *resolver = dkim_resolver_new_custom(test_dns_lookup,
							   &no_keys);
	struct verified out;

	dkim_verify_config_init(&config);
	dkim_verifier *verifier = dkim_verifier_new(&config, resolver);
	dkim_verifier_feed(verifier, signature, strlen(signature));
	dkim_verifier_feed(verifier, headers, strlen(headers));
	dkim_verifier_feed(verifier, "\r\nbody\r\n", 8);
	dkim_verifier_finish(verifier);
	if (dispute)
		dkim_verifier_dispute_author(verifier);
	out.status = dkim_verifier_author_status(verifier);
	const char *domain = dkim_verifier_from_domain(verifier);
	out.domain = domain != NULL ? strdup(domain) : NULL;
	out.authres = dkim_authres_value(verifier, "mx", 0);
	dkim_verifier_free(&verifier);
	dkim_resolver_free(&resolver);
	return out;
}

static void
verified_free(struct verified *out)
{
	free(out->domain);
	free(out->authres);
}

static void
test_verifier(void)
{
	struct verified out = verify("From: Bank <alerts@Bank.Example>\r\n",
				     false);
	tap_ok(out.status == DKIM_AUTHOR_FOUND && out.domain != NULL &&
	       strcmp(out.domain, "bank.example") == 0 &&
	       strstr(out.authres, "author") == NULL,
	       "verifier: one mailbox, its domain; nothing said in the A-R");
	verified_free(&out);

	out = verify("From : alerts@bank.example\r\n", false);
	tap_is_str(out.domain, "bank.example",
		   "verifier: WSP before the colon (obs-from)");
	verified_free(&out);

	out = verify("From: alerts@bank.example@evil.example\r\n", false);
	tap_ok(out.status == DKIM_AUTHOR_SYNTAX && out.domain == NULL,
	       "verifier: a spoofed From has no author domain");
	tap_ok(strstr(out.authres, "(no author domain: the From field is "
		      "not valid address syntax)") != NULL,
	       "the A-R says why: %s", out.authres);
	verified_free(&out);

	out = verify("From: a@bank.example,\r\n x@evil.example\r\n", false);
	tap_ok(out.status == DKIM_AUTHOR_SEVERAL_MAILBOXES &&
	       strstr(out.authres, "(no author domain: several mailboxes "
		      "in the From field)") != NULL,
	       "verifier: a folded list: %s", out.authres);
	verified_free(&out);

	out = verify("Subject: no From\r\n", false);
	tap_ok(out.status == DKIM_AUTHOR_NO_FROM &&
	       strstr(out.authres, "(no author domain: no From field)") !=
	       NULL, "verifier: no From field: %s", out.authres);
	verified_free(&out);

	out = verify("From: a@bank.example\r\nFrom: x@evil.example\r\n", false);
	tap_ok(out.status == DKIM_AUTHOR_MULTIPLE_FROM && out.domain == NULL &&
	       strstr(out.authres, "dkim=policy") != NULL &&
	       strstr(out.authres, "no author domain") == NULL,
	       "verifier: several From fields: policy, which says it: %s",
	       out.authres);
	verified_free(&out);

	out = verify("From: alerts@bank.example\r\n", true);
	tap_ok(out.status == DKIM_AUTHOR_DISPUTED && out.domain == NULL &&
	       strstr(out.authres, "(no author domain: the From field reads "
		      "differently to mail clients)") != NULL,
	       "verifier: a disputed author: %s", out.authres);
	verified_free(&out);

	out = verify("From: a@b.example, c@d.example\r\n", true);
	tap_is_int(out.status, DKIM_AUTHOR_SEVERAL_MAILBOXES,
		   "disputing no author keeps the first reason");
	verified_free(&out);
}

int
main(void)
{
	test_spoofing();
	test_valid_forms();
	test_obsolete_forms();
	test_local_parts();
	test_text_bytes();
	test_no_author();
	test_syntax_errors();
	test_limits();
	test_verifier();
	return tap_done();
}

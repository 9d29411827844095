/* Authentication-Results output: shape, quoting of hostile values,
 * header.b uniqueness, folding, and recognising our own authserv-id. */
#include "dkim-private.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static enum dkim_dns_status
no_keys(void *context, const char *qname, struct dkim_dns_answer *answer)
{
	(void)context;
	(void)qname;
	(void)answer;
	return DKIM_DNS_NOT_FOUND;
}

static char *
authres_for(const char *msg, const char *authserv_id, unsigned flags)
{
	struct dkim_verify_config config;
	dkim_resolver *resolver = dkim_resolver_new_custom(no_keys, NULL);

	dkim_verify_config_init(&config);
	dkim_verifier *verifier = dkim_verifier_new(&config, resolver);
	dkim_verifier_feed(verifier, msg, strlen(msg));
	dkim_verifier_finish(verifier);
	char *value = dkim_authres_value(verifier, authserv_id, flags);
	dkim_verifier_free(&verifier);
	dkim_resolver_free(&resolver);
	return value;
}

/* No CR or LF except the CRLF TAB of folding; no other controls. */
static bool
is_safe_field_value(const char *value)
{
	for (const char *p = value; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n' && p[2] == '\t') {
			p += 2;
			continue;
		}
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	}
	return true;
}

static bool
lines_fit(const char *value, size_t first_line_offset)
{
	size_t column = first_line_offset;

	for (const char *p = value; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n') {
			if (column > 78)
				return false;
			column = 0;
			p++;
			continue;
		}
		column++;
	}
	return column <= 78;
}

#define SIG_TAIL "h=from; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;"

static void
test_values(void)
{
	char *value = authres_for("From: a@b.example\r\n\r\nx\r\n",
				  "mx.example.org", 0);
	tap_is_str(value, "mx.example.org; dkim=none", "unsigned: dkim=none");
	free(value);

	value = authres_for("DKIM-Signature: v=1; a=rsa-sha256; d=example.com; "
			    "s=sel; i=joe@example.com; " SIG_TAIL
			    " b=AbC/dEf+Gh1234==\r\n"
			    "From: a@example.com\r\n\r\nx\r\n", "mx", 0);
	tap_is_str(value, "mx; dkim=permerror "
		   "reason=\"no key at sel._domainkey.example.com\" "
		   "header.d=example.com header.i=joe@example.com "
		   "header.s=sel header.a=rsa-sha256 header.b=\"AbC/dEf+\"",
		   "permerror with reason, properties, quoted header.b");
	free(value);

	value = authres_for("DKIM-Signature: v=1; a=rsa-sha256; "
			    "d=a\"b\\c\xff; s=sel; " SIG_TAIL " b=AAAA\r\n"
			    "From: a@example.com\r\n\r\nx\r\n", "mx", 0);
	tap_ok(strstr(value, "header.d=\"a\\\"b\\\\c?\"") != NULL,
	       "hostile d= is sanitized and quoted: %s", value);
	tap_ok(is_safe_field_value(value), "no control characters");
	free(value);

	/* A bare CR, 8-bit and a folded line inside an unknown c= value
	 * must not reach the reason text raw. */
	value = authres_for("DKIM-Signature: v=1; a=rsa-sha256; "
			    "c=foo\rX-Injected: yes\xff\r\n\tbar; "
			    "d=example.com; s=s; " SIG_TAIL " b=AAAA\r\n"
			    "From: a@example.com\r\n\r\nbody\r\n", "mx", 0);
	tap_ok(is_safe_field_value(value) && strstr(value, "X-Injected") != NULL,
	       "injected CR in c= neutralized: %s", value);
	free(value);

	value = authres_for("From: a@example.com\r\n\r\n", "my host\r\nX: y", 0);
	tap_is_str(value, "\"my host??X: y\"; dkim=none",
		   "authserv-id sanitized and quoted");
	free(value);
}

static void
test_header_b_and_folding(void)
{
	const char *msg =
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=one; "
		SIG_TAIL " b=AAAAAAAAAB==\r\n"
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=two; "
		SIG_TAIL " b=AAAAAAAAAC==\r\n"
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=three; "
		SIG_TAIL " b=ZZZZZZZZZZZZ\r\n"
		"From: a@example.com\r\n\r\nx\r\n";
	char *value = authres_for(msg, "mx.example.org", 0);

	tap_ok(strstr(value, "header.b=AAAAAAAAAB;") != NULL &&
	       strstr(value, "header.b=AAAAAAAAAC;") != NULL,
	       "header.b long enough to tell signatures apart");
	tap_ok(strstr(value, "header.b=ZZZZZZZZ") != NULL &&
	       strstr(value, "header.b=ZZZZZZZZZ") == NULL,
	       "header.b is 8 characters when unique");
	free(value);

	value = authres_for(msg, "mx.example.org", DKIM_AUTHRES_FOLD);
	tap_ok(is_safe_field_value(value), "folded value is safe");
	tap_ok(lines_fit(value, strlen("Authentication-Results: ")),
	       "folded lines fit in 78 characters");
	tap_ok(strncmp(value, "mx.example.org;\r\n\tdkim=permerror", 32) == 0,
	       "one result per line");
	free(value);
}

static void
test_is_ours(void)
{
	static const struct {
		const char *value;
		bool ours;
	} cases[] = {
		{ "mx.example.org; dkim=pass", true },
		{ " MX.Example.ORG ; spf=pass", true },
		{ "(forged) mx.example.org; dkim=pass", true },
		{ "\r\n\t(a (nested) comment)mx.example.org 1; none", true },
		{ "\"mx.example.org\"; dkim=pass", true },
		{ "mx.example.org.evil; dkim=pass", false },
		{ "other.example; dkim=pass header.d=mx.example.org", false },
		{ "", false },
		{ "(unterminated comment mx.example.org", false },
	};
	for (size_t i = 0; i < DKIM_N_ELEMENTS(cases); i++) {
		char *name = dkim_sanitize(cases[i].value,
					   strlen(cases[i].value));
		tap_ok(dkim_authres_is_ours(cases[i].value,
					    strlen(cases[i].value),
					    "mx.example.org") == cases[i].ours,
		       "%s '%s'", cases[i].ours ? "ours" : "not ours", name);
		free(name);
	}
}

int
main(void)
{
	test_values();
	test_header_b_and_folding();
	test_is_ours();
	return tap_done();
}

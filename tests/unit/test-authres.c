/* Authentication-Results output: shape, quoting of hostile values,
 * header.b uniqueness, folding, and recognising our own authserv-id. */
#include "dkim-private.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* A value with its length: some hold NULs. */
#define VALUE(text) text, sizeof(text) - 1

static void
test_is_ours(void)
{
	static const struct {
		const char *value;
		size_t len;
		bool ours;
	} cases[] = {
		{ VALUE("mx.example.org; dkim=pass"), true },
		{ VALUE(" MX.Example.ORG ; spf=pass"), true },
		{ VALUE("(forged) mx.example.org; dkim=pass"), true },
		{ VALUE("\r\n\t(a (nested) comment)mx.example.org 1; none"), true },
		{ VALUE("\"mx.example.org\"; dkim=pass"), true },
		{ VALUE("\"mx.exa\\mple.org\"; dkim=pass"), true },
		{ VALUE("\"mx.example.org junk\"; dkim=pass"), true },
		{ VALUE("\"mx.example.org"), true },
		{ VALUE("mx.example.org"), true },
		/* a domain: trailing dots do not count */
		{ VALUE("mx.example.org.; dkim=pass"), true },
		{ VALUE("MX.EXAMPLE.ORG..; dkim=pass"), true },
		/* a parser stops at the first byte a token cannot hold */
		{ VALUE("mx.example.org\0; dkim=pass"), true },
		{ VALUE("mx.example.org\0evil; dkim=pass"), true },
		{ VALUE("mx.example.org/x; dkim=pass"), true },
		{ VALUE("mx.example.org\"; dkim=pass"), true },
		{ VALUE("mx.example.org\xff; dkim=pass"), true },
		/* a person does not see control characters */
		{ VALUE("mx.exa\0mple.org; dkim=pass"), true },
		{ VALUE("mx.example.\x01org.\x7f; dkim=pass"), true },
		{ VALUE("mx.example.org.evil; dkim=pass"), false },
		{ VALUE("mx.example.orgx; dkim=pass"), false },
		{ VALUE("mx.example.org-x; dkim=pass"), false },
		{ VALUE(".mx.example.org; dkim=pass"), false },
		{ VALUE("mx example.org; dkim=pass"), false },
		{ VALUE("mx.example.or\0g.evil; dkim=pass"), false },
		{ VALUE("(mx.example.org) x; dkim=pass"), false },
		{ VALUE("other.example; dkim=pass header.d=mx.example.org"), false },
		{ VALUE(""), false },
		{ VALUE("(unterminated comment mx.example.org"), false },
	};
	for (size_t i = 0; i < DKIM_N_ELEMENTS(cases); i++) {
		char *name = dkim_sanitize(cases[i].value, cases[i].len);
		tap_ok(dkim_authres_is_ours(cases[i].value, cases[i].len,
					    "mx.example.org") == cases[i].ours,
		       "%s '%s'", cases[i].ours ? "ours" : "not ours", name);
		free(name);
	}

	tap_ok(dkim_authres_is_ours("mx.example.org; x", 17, "MX.example.org.") &&
	       dkim_authres_is_ours("mx.example.org.; x", 18, "mx.example.org"),
	       "our own id is compared as a domain too");
	/* fuzz-verify: an id with a tspecial, quoted as we write it */
	tap_ok(dkim_authres_is_ours("\"mx;1\"; dkim=none", 17, "mx;1") &&
	       dkim_authres_is_ours("\"m\\\"x\"; dkim=none", 17, "m\"x") &&
	       !dkim_authres_is_ours("\"mx;1\"; dkim=none", 17, "mx;2"),
	       "an id that has to be quoted is ours when quoted");
	tap_ok(!dkim_authres_is_ours("; dkim=pass", 11, "") &&
	       !dkim_authres_is_ours(".; dkim=pass", 12, ".") &&
	       !dkim_authres_is_ours("\"\"; dkim=pass", 13, ""),
	       "an empty authserv-id is nobody's");
}

/* What the filter made of a header block. */
struct filtered {
	struct dkim_buf kept;
	size_t removed;
	uint64_t header_size;
	size_t consumed;
	char *top;
};

static void
collect(void *context, const void *data, size_t size)
{
	dkim_buf_append(context, data, size);
}

/* Runs the filter over `len` bytes fed `chunk` bytes at a time. */
static void
filter_run(const char *message, size_t len, size_t max_field, size_t chunk,
	   struct filtered *result)
{
	dkim_authres_filter *filter;
	size_t top_len;

	memset(result, 0, sizeof(*result));
	dkim_buf_append(&result->kept, "", 0);
	filter = dkim_authres_filter_new("mx.example.org", max_field, collect,
					 &result->kept);
	for (size_t pos = 0; pos < len; pos += chunk) {
		size_t size = len - pos < chunk ? len - pos : chunk;
		size_t used = dkim_authres_filter_feed(filter, message + pos,
						       size);

		result->consumed += used;
		if (used < size)
			break;
	}
	result->header_size = dkim_authres_filter_finish(filter);
	result->removed = dkim_authres_filter_removed(filter);
	const char *top = dkim_authres_filter_removed_top(filter, &top_len);
	result->top = top == NULL ? NULL : dkim_strndup(top, top_len);
	dkim_authres_filter_free(&filter);
}

static void
filtered_free(struct filtered *result)
{
	dkim_buf_free(&result->kept);
	free(result->top);
}

#define FORGED "Authentication-Results: mx.example.org; dkim=pass\r\n"
#define SUBJECT "Subject: hello\r\n"
#define BODY "\r\nbody\r\n"

static void
test_filter_fields(void)
{
	static const struct {
		const char *name;
		const char *field;	/* between SUBJECT and SUBJECT */
		size_t len;
		bool ours;
	} cases[] = {
		{ "plain", VALUE(FORGED), true },
		{ "tab before the colon",
		  VALUE("Authentication-Results\t: mx.example.org; dkim=pass\r\n"),
		  true },
		{ "bare CR before the colon",
		  VALUE("Authentication-Results\r: mx.example.org; dkim=pass\r\n"),
		  true },
		{ "bare CR in the name",
		  VALUE("Authentic\ration-Results: mx.example.org; x\r\n"), true },
		{ "NUL in the name",
		  VALUE("Authentication-Results\0: mx.example.org; x\r\n"), true },
		{ "folded before the colon",
		  VALUE("Authentication-Results\r\n : mx.example.org; x\r\n"),
		  true },
		{ "id on the continuation line",
		  VALUE("authentication-results:\r\n\tMX.example.org.; x\r\n"),
		  true },
		{ "after a bare CR in another field",
		  VALUE("X-Note: a\rAuthentication-Results: mx.example.org; x\r\n"),
		  true },
		{ "after a bare CR, folded by a bare CR",
		  VALUE("X-Note: a\rAuthentication-Results:\r mx.example.org\r\n"),
		  true },
		{ "a line that begins with a bare CR",
		  VALUE("\rAuthentication-Results: mx.example.org; x\r\n"), true },
		{ "LF line ends",
		  VALUE("Authentication-Results: mx.example.org; x\n"), true },
		{ "another authserv-id",
		  VALUE("Authentication-Results: relay.example; spf=pass\r\n"),
		  false },
		{ "our id as a subdomain's label",
		  VALUE("Authentication-Results: mx.example.org.evil; x\r\n"),
		  false },
		{ "another name",
		  VALUE("X-Authentication-Results: mx.example.org; x\r\n"), false },
		{ "a longer name",
		  VALUE("Authentication-Results-X: mx.example.org; x\r\n"), false },
		{ "no colon",
		  VALUE("Authentication-Results mx.example.org; x\r\n"), false },
		{ "a bare CR that folds",
		  VALUE("X-Note: a\r Authentication-Results: mx.example.org\r\n"),
		  false },
		{ "in another field's value",
		  VALUE("X-Note: Authentication-Results: mx.example.org\r\n"),
		  false },
	};
	for (size_t i = 0; i < DKIM_N_ELEMENTS(cases); i++) {
		struct dkim_buf message = { 0 }, expected = { 0 };
		struct filtered whole, bytewise;

		dkim_buf_append_str(&message, SUBJECT);
		dkim_buf_append(&message, cases[i].field, cases[i].len);
		dkim_buf_append_str(&message, SUBJECT BODY);
		dkim_buf_append_str(&expected, SUBJECT);
		if (!cases[i].ours)
			dkim_buf_append(&expected, cases[i].field, cases[i].len);
		dkim_buf_append_str(&expected, SUBJECT);

		filter_run(message.data, message.len, 4096, message.len, &whole);
		filter_run(message.data, message.len, 4096, 1, &bytewise);
		tap_ok(whole.removed == (cases[i].ours ? 1 : 0) &&
		       whole.kept.len == expected.len &&
		       memcmp(whole.kept.data, expected.data, expected.len) == 0,
		       "%s: %s", cases[i].name,
		       cases[i].ours ? "removed" : "kept");
		tap_ok(whole.header_size == message.len - strlen(BODY) &&
		       whole.consumed == message.len - strlen(BODY) + 2 &&
		       bytewise.header_size == whole.header_size &&
		       bytewise.consumed == whole.consumed &&
		       bytewise.removed == whole.removed &&
		       bytewise.kept.len == whole.kept.len &&
		       memcmp(bytewise.kept.data, whole.kept.data,
			      whole.kept.len) == 0,
		       "%s: the header ends before the empty line, "
		       "byte by byte as in one piece", cases[i].name);
		filtered_free(&whole);
		filtered_free(&bytewise);
		dkim_buf_free(&message);
		dkim_buf_free(&expected);
	}
}

static void
test_filter_block(void)
{
	struct filtered result;
	struct dkim_buf spaces = { 0 };

	/* RFC 5322 obsolete syntax, as in the issue: 9000 spaces */
	dkim_buf_append_str(&spaces, SUBJECT "Authentication-Results");
	for (int i = 0; i < 9000; i++)
		dkim_buf_append_c(&spaces, ' ');
	dkim_buf_append_str(&spaces, ": mx.example.org; dkim=pass\r\n" BODY);
	filter_run(spaces.data, spaces.len, 4096, 100, &result);
	tap_ok(result.removed == 1 && strcmp(result.kept.data, SUBJECT) == 0,
	       "9000 spaces before the colon: removed");
	filtered_free(&result);
	dkim_buf_free(&spaces);

	filter_run(FORGED SUBJECT FORGED BODY, strlen(FORGED SUBJECT FORGED BODY),
		   4096, 7, &result);
	tap_ok(result.removed == 2 && result.top != NULL &&
	       strcmp(result.top, FORGED) == 0 &&
	       strcmp(result.kept.data, SUBJECT) == 0,
	       "the topmost field, when removed, is handed back");
	filtered_free(&result);
	filter_run(SUBJECT FORGED BODY, strlen(SUBJECT FORGED BODY), 4096, 3,
		   &result);
	tap_ok(result.removed == 1 && result.top == NULL,
	       "no topmost field when it was kept");
	filtered_free(&result);

	filter_run(" " FORGED BODY, strlen(" " FORGED BODY), 4096, 5, &result);
	tap_ok(result.removed == 1 && result.kept.len == 0,
	       "a first line that begins with a space is a field");
	filtered_free(&result);

	filter_run(SUBJECT FORGED, strlen(SUBJECT FORGED), 4096, 5, &result);
	tap_ok(result.removed == 1 &&
	       result.header_size == strlen(SUBJECT FORGED) &&
	       strcmp(result.kept.data, SUBJECT) == 0,
	       "a message without an empty line is all header");
	filtered_free(&result);

	filter_run(SUBJECT "Authentication-Results: mx.example.org",
		   strlen(SUBJECT "Authentication-Results: mx.example.org"),
		   4096, 5, &result);
	tap_ok(result.removed == 1, "a last field without a line end");
	filtered_free(&result);

	/* As the verifier reads it: the lone CR ends the header block, and
	 * stays with the rest of the message, after header_size. */
	filter_run(SUBJECT "\r", strlen(SUBJECT "\r"), 4096, 1, &result);
	tap_ok(result.removed == 0 && strcmp(result.kept.data, SUBJECT) == 0 &&
	       result.header_size == strlen(SUBJECT),
	       "a message that ends with a lone CR: it ends the header block");
	filtered_free(&result);

	filter_run("\r\nbody", 6, 4096, 1, &result);
	tap_ok(result.header_size == 0 && result.consumed == 2 &&
	       result.kept.len == 0, "an empty header block");
	filtered_free(&result);

	filter_run("Subject: a\nAuthentication-Results: mx.example.org\n\nb\n",
		   strlen("Subject: a\nAuthentication-Results: mx.example.org"
			  "\n\nb\n"), 4096, 4, &result);
	tap_ok(result.removed == 1 && result.header_size == 50 &&
	       strcmp(result.kept.data, "Subject: a\n") == 0,
	       "LF line ends");
	filtered_free(&result);
}

static void
test_filter_long_fields(void)
{
	struct filtered result;
	const char *kept_long = "X-Long: 0123456789abcdef0123456789abcdef"
		"0123456789abcdef\r\n";
	struct dkim_buf message = { 0 };

	/* 40 bytes are examined: "Authentication-Results: " and 16 more */
	dkim_buf_append_str(&message, kept_long);
	dkim_buf_append_str(&message, "Authentication-Results: (a long comment "
			    "that goes on) mx.example.org; x\r\n");
	dkim_buf_append_str(&message, "Authentication-Results: other.example; "
			    "spf=pass and then some more\r\n");
	dkim_buf_append_str(&message, "Authentication-Results                "
			    "                \r\n");
	dkim_buf_append_str(&message, "Authentication-Results: mx.example.or");
	dkim_buf_append_str(&message, "g.evil; x\r\n");
	dkim_buf_append_str(&message, SUBJECT BODY);
	filter_run(message.data, message.len, 40, 3, &result);
	tap_ok(result.removed == 3 &&
	       strncmp(result.kept.data, kept_long, strlen(kept_long)) == 0 &&
	       strstr(result.kept.data, "other.example; spf=pass and then some "
		      "more\r\n" SUBJECT) != NULL &&
	       strstr(result.kept.data, "long comment") == NULL &&
	       strstr(result.kept.data, "Results   ") == NULL &&
	       strstr(result.kept.data, "evil") == NULL,
	       "fields longer than examined: kept whole, or removed when the "
	       "rest could make them ours");
	filtered_free(&result);
	dkim_buf_free(&message);
}

/* Adversarial fields in which every bare CR starts a piece that looks
 * like ours, with comments that never close: linear, not quadratic. */
static void
test_filter_linear(void)
{
	static const char piece[] = "\rAuthentication-Results:(x";
	struct dkim_buf message = { 0 };
	struct filtered result;

	dkim_buf_append_str(&message, "X-Junk: ");
	while (message.len < 4 * 1024 * 1024)
		dkim_buf_append_str(&message, piece);
	dkim_buf_append_str(&message, "\r\n" BODY);
	clock_t started = clock();
	filter_run(message.data, message.len, message.len, 65536, &result);
	double seconds = (double)(clock() - started) / CLOCKS_PER_SEC;
	tap_ok(result.removed == 0 && seconds < 10,
	       "a 4 MiB field of %zu-byte pieces: kept, in %.2f s",
	       sizeof(piece) - 1, seconds);
	filtered_free(&result);
	dkim_buf_free(&message);
}

int
main(void)
{
	test_values();
	test_header_b_and_folding();
	test_is_ours();
	test_filter_fields();
	test_filter_block();
	test_filter_long_fields();
	test_filter_linear();
	return tap_done();
}

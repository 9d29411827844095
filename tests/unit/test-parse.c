/* Parsers: tag lists, base64, DKIM-Signature fields, key records, and
 * relaxed alignment (the From field: test-from.c). */
#include "dkim-private.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static void
test_taglist(void)
{
	struct dkim_taglist list;
	struct dkim_error error;
	const char *text = " v = 1 ;\r\n\ta=rsa-sha256;b=ab cd\r\n ef ; ";

	tap_is_int(dkim_taglist_parse(text, strlen(text), &list, &error),
		   DKIM_TAGLIST_OK, "tag list with FWS parses");
	tap_is_int(list.count, 3, "three tags");
	const struct dkim_tag *b = dkim_taglist_find(&list, "b");
	tap_ok(b != NULL && b->value_len == 10 &&
	       memcmp(b->value, "ab cd\r\n ef", 10) == 0,
	       "value keeps inner FWS, loses the surrounding");
	tap_ok(b != NULL && strncmp(text + b->raw_value_end, "; ", 2) == 0,
	       "raw value ends at the ';'");
	tap_ok(dkim_taglist_find(&list, "V") == NULL,
	       "tag names are case-sensitive");

	static const struct {
		const char *text;
		enum dkim_taglist_error expected;
	} cases[] = {
		{ "", DKIM_TAGLIST_OK },
		{ "a=1;", DKIM_TAGLIST_OK },
		{ "a=", DKIM_TAGLIST_OK },
		{ "a=1;;b=2", DKIM_TAGLIST_SYNTAX },
		{ "a=1;a=2", DKIM_TAGLIST_DUPLICATE },
		{ "1a=1", DKIM_TAGLIST_SYNTAX },
		{ "a 1", DKIM_TAGLIST_SYNTAX },
		{ "a=b\001c", DKIM_TAGLIST_SYNTAX },
		{ "a=\xc3\xa9t\xc3\xa9", DKIM_TAGLIST_OK },
	};
	for (size_t i = 0; i < DKIM_N_ELEMENTS(cases); i++) {
		tap_is_int(dkim_taglist_parse(cases[i].text,
					      strlen(cases[i].text), &list,
					      &error),
			   cases[i].expected, cases[i].text);
	}
	char many[1024] = "";
	for (int i = 0; i < DKIM_MAX_TAGS + 1; i++)
		sprintf(many + strlen(many), "t%d=x;", i);
	tap_is_int(dkim_taglist_parse(many, strlen(many), &list, &error),
		   DKIM_TAGLIST_SYNTAX, "more than DKIM_MAX_TAGS tags refused");
}

static void
base64_is(const char *text, const char *expected, const char *name)
{
	size_t size;
	unsigned char *data = dkim_base64_decode(text, strlen(text), &size);

	if (expected == NULL)
		tap_ok(data == NULL, "%s: refused", name);
	else
		tap_ok(data != NULL && size == strlen(expected) &&
		       memcmp(data, expected, size) == 0, "%s", name);
	free(data);
}

static void
test_base64(void)
{
	struct dkim_buf buf = { 0 };

	base64_is("aGVsbG8=", "hello", "padded");
	base64_is("aGVs bG8\r\n\t=", "hello", "FWS ignored");
	base64_is("aGVsbA==", "hell", "double padding");
	base64_is("aGVsbG8", NULL, "missing padding");
	base64_is("aGVsbG8=x", NULL, "data after padding");
	base64_is("aG=sbG8=", NULL, "padding inside");
	base64_is("aGVs*G8=", NULL, "bad character");
	base64_is("aGVsbA===", NULL, "three padding characters");
	dkim_base64_encode(&buf, "hello", 5);
	tap_is_str(buf.data, "aGVsbG8=", "encode");
	dkim_buf_free(&buf);
}

static struct dkim_signature sig;

static enum dkim_reason
parse_sig(const char *value)
{
	char field[4096];

	dkim_signature_clear(&sig);
	snprintf(field, sizeof(field), "DKIM-Signature: %s\r\n", value);
	dkim_signature_parse(&sig, field, strlen(field));
	return sig.error;
}

#define GOOD_BH "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA"
#define BASE "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:to; " GOOD_BH

static void
test_signature(void)
{
	static const struct {
		const char *value;
		enum dkim_reason reason;
		const char *name;
	} cases[] = {
		{ BASE, DKIM_REASON_NONE, "minimal valid signature" },
		{ "a=rsa-sha256; d=example.com; s=sel; h=from; " GOOD_BH,
		  DKIM_REASON_SIG_VERSION, "v= missing" },
		{ "v=2; a=rsa-sha256; d=example.com; s=sel; h=from; " GOOD_BH,
		  DKIM_REASON_SIG_VERSION, "v=2" },
		{ "v=1; a=rsa-sha1; d=example.com; s=sel; h=from; " GOOD_BH,
		  DKIM_REASON_ALGORITHM_SHA1, "rsa-sha1 refused" },
		{ "v=1; a=rsa-md5; d=example.com; s=sel; h=from; " GOOD_BH,
		  DKIM_REASON_ALGORITHM_UNKNOWN, "unknown algorithm" },
		{ "v=1; a=rsa-sha256; d=example.com; h=from; " GOOD_BH,
		  DKIM_REASON_SIG_MISSING_TAG, "s= missing" },
		{ BASE "; v=1", DKIM_REASON_SIG_DUPLICATE_TAG, "duplicate v=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=to:subject; "
		  GOOD_BH, DKIM_REASON_FROM_NOT_SIGNED, "From not signed" },
		{ BASE "; c=relaxed/fancy", DKIM_REASON_CANON_UNKNOWN,
		  "unknown body canonicalization" },
		{ BASE "; q=http/well-known", DKIM_REASON_QUERY_METHOD,
		  "unknown query method" },
		{ BASE "; q=foo/bar:dns/txt", DKIM_REASON_NONE,
		  "a known method among others" },
		{ BASE "; i=joe@evil.example", DKIM_REASON_IDENTITY_MISMATCH,
		  "i= outside d=" },
		{ BASE "; i=joe@sub.example.com", DKIM_REASON_NONE,
		  "i= in a subdomain" },
		{ BASE "; i=jo=65@example.com", DKIM_REASON_NONE,
		  "quoted-printable i=" },
		{ BASE "; i=jo=6@example.com", DKIM_REASON_SIG_SYNTAX,
		  "broken quoted-printable" },
		{ BASE "; l=99999999999999999999999", DKIM_REASON_BAD_BODY_LENGTH,
		  "huge l= refused" },
		{ BASE "; t=200; x=100", DKIM_REASON_EXPIRY_BEFORE_TIMESTAMP,
		  "x= before t=" },
		{ BASE "; t=1x", DKIM_REASON_SIG_SYNTAX, "malformed t=" },
		{ "v=1; a=rsa-sha256; d=legitimate.com(.attacker.com; s=sel; "
		  "h=from; " GOOD_BH, DKIM_REASON_SIG_SYNTAX, "invalid d=" },
		{ "v=1; a=rsa-sha256; d=com; s=sel; h=from; " GOOD_BH,
		  DKIM_REASON_SIG_SYNTAX, "d= needs two labels" },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; "
		  "bh=AAAA; b=AAAA", DKIM_REASON_SIG_SYNTAX, "short bh=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; "
		  "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=A*AA",
		  DKIM_REASON_SIG_SYNTAX, "garbage b=" },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from::to; "
		  GOOD_BH, DKIM_REASON_SIG_SYNTAX, "empty name in h=" },
	};
	for (size_t i = 0; i < DKIM_N_ELEMENTS(cases); i++) {
		enum dkim_reason got = parse_sig(cases[i].value);
		tap_ok(got == cases[i].reason, "signature: %s", cases[i].name);
		if (got != cases[i].reason)
			tap_diag("got %s (%s)", dkim_reason_name(got),
				 sig.error_text);
	}

	parse_sig("v=1; a=ed25519-sha256; c=relaxed; d=Example.COM; s=s1; "
		  "h=From : To; l=42; t=5; x=10; i=@example.com; "
		  "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AA AA");
	tap_ok(sig.error == DKIM_REASON_NONE, "full signature parses");
	tap_ok(sig.key_type == DKIM_KEY_ED25519 &&
	       sig.header_canon == DKIM_CANON_RELAXED &&
	       sig.body_canon == DKIM_CANON_SIMPLE,
	       "c=relaxed means relaxed/simple");
	tap_ok(sig.signed_header_count == 2 && sig.signed_headers[1].len == 2,
	       "h= items trimmed");
	tap_ok(sig.has_length && sig.length == 42 && sig.timestamp == 5 &&
	       sig.expiration == 10, "l=, t=, x= values");
	tap_is_str(sig.b_text, "AAAA", "b= text without FWS");
	const char *field = sig.field;
	tap_ok(strncmp(field + sig.b_value_start, "AA AA", 5) == 0 &&
	       strcmp(field + sig.b_value_end, "\r\n") == 0,
	       "b= value located for deletion");
	dkim_signature_clear(&sig);
}

/* A signature field whose h= lists From `count` times, each preceded by
 * `empty` empty elements. */
static enum dkim_reason
parse_h_list(enum dkim_signature_kind kind, size_t count, size_t empty)
{
	struct dkim_buf field = { 0 };

	dkim_buf_append_str(&field, kind == DKIM_SIG_DKIM ?
			    "DKIM-Signature: v=1; h=" :
			    "ARC-Message-Signature: i=1; h=");
	for (size_t i = 0; i < count; i++) {
		for (size_t e = 0; e < empty; e++)
			dkim_buf_append_c(&field, ':');
		dkim_buf_append_str(&field, i == 0 ? "from" : ":from");
	}
	dkim_buf_append_str(&field, "; a=rsa-sha256; d=example.com; s=sel; "
			    GOOD_BH "\r\n");
	dkim_signature_clear(&sig);
	dkim_signature_parse_kind(&sig, kind, field.data, field.len);
	dkim_buf_free(&field);
	return sig.error;
}

static void
test_signed_header_cap(void)
{
	tap_is_int(parse_h_list(DKIM_SIG_DKIM, DKIM_MAX_SIGNED_HEADERS, 0),
		   DKIM_REASON_NONE, "h= with DKIM_MAX_SIGNED_HEADERS entries");
	tap_ok(sig.signed_header_count == DKIM_MAX_SIGNED_HEADERS,
	       "all of them kept");
	tap_is_int(parse_h_list(DKIM_SIG_DKIM, DKIM_MAX_SIGNED_HEADERS + 1, 0),
		   DKIM_REASON_SIG_TOO_MANY_HEADERS, "one entry more: refused");
	tap_is_str(sig.error_text, "h= lists more than 1000 header fields",
		   "the explanation names the cap");
	tap_is_int(parse_h_list(DKIM_SIG_ARC_MESSAGE, DKIM_MAX_SIGNED_HEADERS,
				2),
		   DKIM_REASON_NONE, "an AMS's empty elements do not count");
	tap_is_int(parse_h_list(DKIM_SIG_ARC_MESSAGE,
				DKIM_MAX_SIGNED_HEADERS + 1, 0),
		   DKIM_REASON_SIG_TOO_MANY_HEADERS, "the AMS has the same cap");
	dkim_signature_clear(&sig);
}

static enum dkim_reason
parse_key(const char *record, struct dkim_key_record *info)
{
	struct dkim_error error;
	dkim_pubkey *key = NULL;
	enum dkim_reason reason = dkim_key_record_parse(record, strlen(record),
							info, &key, &error);
	dkim_pubkey_free(&key);
	return reason;
}

/* RFC 8463 A.2 and RFC 6376 Appendix C keys, and a 512-bit key. */
#define RSA1024_SPKI "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
#define RSA1024_PKCS1 "MIGJAoGBAOQeU5CgFPNZGIazlXo2k/eJ1jpaTTxrmqF1HrDLlt04pvaMtCJj8nXoliLRC/H9vJjMI1vdb3XLcW60AIN/PBD8EL97/y4GwJH7LPUvGP48vqUe+owqszesbiGy1PlCO8c70/OjFnJVgvMF87YR4Lcincb7aSvI5MgpP6X8rjDdAgMBAAE="
#define RSA512_SPKI "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBANmBe10IgY+u7h3enWTukkqtUD5PR52Tb/mPfjC0QJTocVBq6Za/PlzfV+Py92VaCak19F4WrbVTK5Gg5tW220MCAwEAAQ=="
#define ED25519_KEY "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

static void
test_key_record(void)
{
	struct dkim_key_record info;

	tap_is_int(parse_key("v=DKIM1; k=rsa; p=" RSA1024_SPKI, &info),
		   DKIM_REASON_NONE, "RSA SubjectPublicKeyInfo");
	tap_is_int(info.bits, 1024, "its size");
	tap_ok(info.allows_sha256 && info.email_service && !info.testing &&
	       !info.strict_identity, "defaults of h=, s=, t=");
	tap_is_int(parse_key("p=" RSA1024_PKCS1, &info), DKIM_REASON_NONE,
		   "bare PKCS#1 RSAPublicKey accepted");
	tap_is_int(parse_key("v=DKIM1; k=ed25519; p=" ED25519_KEY, &info),
		   DKIM_REASON_NONE, "Ed25519 key");
	tap_is_int(parse_key("v=DKIM1; p=", &info), DKIM_REASON_NONE,
		   "empty p= parses");
	tap_ok(info.revoked, "and means revoked");
	tap_is_int(parse_key("k=rsa; v=DKIM1; p=" RSA1024_SPKI, &info),
		   DKIM_REASON_KEY_VERSION, "v= not first");
	tap_is_int(parse_key("v=DKIM2; p=" RSA1024_SPKI, &info),
		   DKIM_REASON_KEY_VERSION, "v=DKIM2");
	tap_is_int(parse_key("k=dsa; p=" RSA1024_SPKI, &info),
		   DKIM_REASON_KEY_TYPE_UNKNOWN, "unknown k=");
	tap_is_int(parse_key("v=DKIM1; k=rsa", &info), DKIM_REASON_KEY_SYNTAX,
		   "p= missing");
	tap_is_int(parse_key("p=" RSA1024_SPKI "; p=x", &info),
		   DKIM_REASON_KEY_SYNTAX, "duplicate p=");
	tap_is_int(parse_key("p=bm90IGEga2V5IGF0IGFsbA==", &info),
		   DKIM_REASON_KEY_DATA, "garbage p=");
	tap_is_int(parse_key("p=%%%", &info), DKIM_REASON_KEY_DATA,
		   "p= not base64");
	tap_is_int(parse_key("k=ed25519; p=AAAA", &info), DKIM_REASON_KEY_DATA,
		   "short Ed25519 key");
	tap_is_int(parse_key("p=" RSA512_SPKI, &info),
		   DKIM_REASON_KEY_TOO_SMALL, "512-bit RSA key refused");
	tap_is_int(info.bits, 512, "its size is reported");
	tap_is_int(parse_key("h=sha1; p=" RSA1024_SPKI, &info),
		   DKIM_REASON_NONE, "key h=sha1 parses");
	tap_ok(!info.allows_sha256, "but excludes sha256");
	tap_is_int(parse_key("s=tlsrpt; t=y:s; p=" RSA1024_SPKI, &info),
		   DKIM_REASON_NONE, "s= and t= lists");
	tap_ok(!info.email_service && info.testing && info.strict_identity,
	       "s=tlsrpt is not email; t=y:s flags");
	tap_is_int(parse_key("s=email:*; p=" RSA1024_SPKI, &info),
		   DKIM_REASON_NONE, "s= list with email");
	tap_ok(info.email_service, "email service");
}

static void
test_alignment(void)
{
	tap_ok(dkim_domains_aligned("mail.example.com", "example.com"),
	       "subdomain aligns with its parent");
	tap_ok(dkim_domains_aligned("a.example.co.uk", "B.Example.co.uk"),
	       "organizational domain under a two-label suffix");
	tap_ok(!dkim_domains_aligned("example.co.uk", "other.co.uk"),
	       "different registrations under co.uk do not align");
	tap_ok(!dkim_domains_aligned("example.com", "example.net"),
	       "different TLDs do not align");
	tap_ok(!dkim_domains_aligned("example.com", NULL), "NULL never aligns");
}

int
main(void)
{
	test_taglist();
	test_base64();
	test_signature();
	test_signed_header_cap();
	test_key_record();
	test_alignment();
	return tap_done();
}

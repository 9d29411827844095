/* Golden vectors: signing the RFC 8463 Appendix A.3 and RFC 6376
 * Appendix A.2 messages with the published keys, timestamps and tag
 * lists must reproduce the published bh= and b= exactly, and so must
 * sealing dkimpy's ARC test message with its fields as dkimpy lays them
 * out.  Reads the vectors from $DKIM_SHARED_DIR/corpus; skips when that
 * directory is absent (a clone without ../shared), fails when a vector is. */
#include "dkim-private.h"
#include "sign-template.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *
shared_dir(void)
{
	const char *shared = getenv("DKIM_SHARED_DIR");

	return shared != NULL ? shared : "../shared";
}

static char *
read_file(const char *name, size_t *size_r)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/corpus/%s", shared_dir(), name);
	FILE *file = fopen(path, "rb");
	if (file == NULL) {
		printf("Bail out! cannot read %s\n", path);
		exit(1);
	}
	fseek(file, 0, SEEK_END);
	long size = ftell(file);
	rewind(file);
	char *data = malloc((size_t)size + 1);
	if (fread(data, 1, (size_t)size, file) != (size_t)size)
		abort();
	data[size] = '\0';
	fclose(file);
	*size_r = (size_t)size;
	return data;
}

/* The n-th field with this name (given with its colon) of a message,
 * with its CRLF. */
static char *
nth_field(const char *msg, const char *name, int n)
{
	const char *p = msg;

	for (;; p = strstr(p, "\r\n") + 2) {
		if (strncmp(p, name, strlen(name)) == 0 && n-- == 0)
			break;
	}
	const char *end = p;
	do {
		end = strstr(end, "\r\n") + 2;
	} while (*end == ' ' || *end == '\t');
	return dkim_strndup(p, (size_t)(end - p));
}

/* A tag value with FWS removed. */
static char *
tag_value(const char *field, const char *tag)
{
	const char *p = field;
	struct dkim_buf value = { 0 };

	while ((p = strstr(p, tag)) != NULL && p > field &&
	       p[-1] != ' ' && p[-1] != ';' && p[-1] != '\t')
		p++;
	for (p += strlen(tag); *p != '\0' && *p != ';'; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			dkim_buf_append_c(&value, *p);
	}
	return dkim_buf_steal(&value);
}

/* The field with the values of bh= and b= emptied. */
static char *
template_of(const char *field)
{
	struct dkim_buf out = { 0 };
	const char *p = field;

	while (*p != '\0') {
		bool tag = (p == field || p[-1] == ' ' || p[-1] == ';' ||
			    p[-1] == '\t') &&
			(strncmp(p, "bh=", 3) == 0 || strncmp(p, "b=", 2) == 0);
		if (!tag) {
			dkim_buf_append_c(&out, *p++);
			continue;
		}
		const char *eq = strchr(p, '=');
		dkim_buf_append(&out, p, (size_t)(eq + 1 - p));
		p = eq + 1;
		while (*p != '\0' && *p != ';' &&
		       !(p[0] == '\r' && p[1] == '\n' && p[2] != ' ' &&
			 p[2] != '\t'))
			p++;
	}
	return dkim_buf_steal(&out);
}

static void
golden(const char *signed_name, int index, const char *input_name,
       const char *key_name, const char *label)
{
	size_t signed_size, input_size, key_size;
	char *signed_msg = read_file(signed_name, &signed_size);
	char *input = read_file(input_name, &input_size);
	char *key_text = read_file(key_name, &key_size);
	char *field = nth_field(signed_msg, "DKIM-Signature:", index);
	char *template = template_of(field);
	struct dkim_error error;
	dkim_privkey *key;

	/* The A.2 input is the signed message without its signature. */
	if (strcmp(signed_name, input_name) == 0) {
		char *start = strstr(input, field);
		memmove(start, start + strlen(field),
			strlen(start + strlen(field)) + 1);
		input_size = strlen(input);
	}
	if (dkim_privkey_parse(key_text, key_size, &key, &error) < 0) {
		tap_ok(0, "%s: key loads (%s)", label, error.text);
		return;
	}
	char *result = sign_template_field(key, template, input, input_size,
					   &error);
	char *want_bh = tag_value(field, "bh="), *want_b = tag_value(field, "b=");
	char *got_bh = result != NULL ? tag_value(result, "bh=") : NULL;
	char *got_b = result != NULL ? tag_value(result, "b=") : NULL;

	tap_is_str(got_bh, want_bh, label);
	tap_diag("  bh=");
	tap_is_str(got_b, want_b, label);
	tap_diag("  b=");

	free(want_bh);
	free(want_b);
	free(got_bh);
	free(got_b);
	free(result);
	dkim_privkey_free(&key);
	free(template);
	free(field);
	free(key_text);
	free(input);
	free(signed_msg);
}

/* dkimpy's files are LF on disk. */
static char *
read_crlf(const char *name)
{
	size_t size;
	char *text = read_file(name, &size);
	struct dkim_buf out = { 0 };

	for (size_t i = 0; i < size; i++) {
		if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r'))
			dkim_buf_append_c(&out, '\r');
		dkim_buf_append_c(&out, text[i]);
	}
	free(text);
	return dkim_buf_steal(&out);
}

/* dkimpy's ARC set for data/test.message (s=test, d=example.com, t=12345):
 * its AMS and its seal over AAR, AMS and the seal itself must come out
 * with the same bh= and b= values when the fields are laid out as dkimpy
 * does (dkim-sign writes them sorted, see test-arc.py). */
static void
arc_golden(void)
{
	const char *label = "dkimpy ARC set rsa-sha256 relaxed/relaxed";
	char *expected = read_crlf("dkimpy/arc-sign-expected.txt");
	char *sealed = read_crlf("dkimpy/arc-signed-message.eml");
	size_t key_size;
	char *key_text = read_file("dkimpy/data/test.private", &key_size);
	/* The input: the sealed message below its ARC set. */
	const char *input = strstr(sealed, "\r\nAuthentication-Results:") + 2;
	char *seal = nth_field(expected, "ARC-Seal:", 0);
	char *ams = nth_field(expected, "ARC-Message-Signature:", 0);
	char *aar = nth_field(expected, "ARC-Authentication-Results:", 0);
	char *ams_template = template_of(ams), *seal_template = template_of(seal);
	struct dkim_error error;
	dkim_privkey *key;

	if (dkim_privkey_parse(key_text, key_size, &key, &error) < 0)
		tap_ok(0, "%s: key loads (%s)", label, error.text);
	else {
		char *got_ams = sign_template_field(key, ams_template,
			input, strlen(input), &error);
		char *got_seal = sign_template_arc_seal(key,
			seal_template, aar, ams, input, strlen(input), &error);
		char *values[][2] = {
			{ tag_value(ams, "bh="), got_ams == NULL ? NULL :
			  tag_value(got_ams, "bh=") },
			{ tag_value(ams, "b="), got_ams == NULL ? NULL :
			  tag_value(got_ams, "b=") },
			{ tag_value(seal, "b="), got_seal == NULL ? NULL :
			  tag_value(got_seal, "b=") },
		};
		const char *names[] = { "AMS bh=", "AMS b=", "ARC-Seal b=" };

		for (size_t i = 0; i < 3; i++) {
			tap_is_str(values[i][1], values[i][0], label);
			tap_diag("  %s", names[i]);
			free(values[i][0]);
			free(values[i][1]);
		}
		free(got_ams);
		free(got_seal);
		dkim_privkey_free(&key);
	}
	free(ams_template);
	free(seal_template);
	free(seal);
	free(ams);
	free(aar);
	free(key_text);
	free(sealed);
	free(expected);
}

static enum dkim_dns_status
no_records(void *context __attribute__((unused)),
	   const char *qname __attribute__((unused)),
	   struct dkim_dns_answer *answer __attribute__((unused)))
{
	return DKIM_DNS_NOT_FOUND;
}

/* A hop that verifies in the same pass (dkim-milter) knows its results
 * only once the body is read: the ARC-Authentication-Results carries the
 * value given last, and the seal cv= follows its arc= result. */
static void
arc_late_authres(void)
{
	static const char message[] = "From: a@b.example\r\nSubject: x\r\n"
		"\r\nHello.\r\n";
	size_t key_size;
	char *key_text = read_file("dkimpy/data/test.private", &key_size);
	dkim_resolver *resolver = dkim_resolver_new_custom(no_records, NULL);
	struct dkim_arc_seal_config config;
	struct dkim_error error;
	dkim_privkey *key;

	if (dkim_privkey_parse(key_text, key_size, &key, &error) < 0) {
		tap_ok(0, "late ARC results: key loads (%s)", error.text);
		free(key_text);
		dkim_resolver_free(&resolver);
		return;
	}
	dkim_signer *signer = dkim_signer_new();
	tap_ok(dkim_signer_set_arc_authres(signer, "mx.example; dkim=none",
					   &error) < 0,
	       "late ARC results: refused without a seal request");
	dkim_arc_seal_config_init(&config);
	config.domain = "example.com";
	config.selector = "test";
	config.key = key;
	config.authserv_id = "mx.example";
	config.resolver = resolver;
	tap_ok(dkim_signer_add_arc_seal(signer, &config, &error) == 0,
	       "late ARC results: seal asked for with the authserv-id only");
	dkim_signer_feed(signer, message, sizeof(message) - 1);
	tap_ok(dkim_signer_set_arc_authres(signer, "mx.example; dkim=pass\x01",
					   &error) < 0,
	       "late ARC results: a value with a control character is "
	       "refused");
	tap_ok(dkim_signer_set_arc_authres(signer, "mx.example; dkim=pass "
		"header.d=b.example; arc=none", &error) == 0 &&
	       dkim_signer_finish(signer, &error) == 0,
	       "late ARC results: given after the body, the seal is made");
	const char *fields = dkim_signer_fields(signer);
	tap_ok(strstr(fields, "dkim=pass header.d=b.example") != NULL &&
	       strstr(fields, "cv=none") != NULL,
	       "late ARC results: in the AAR, and arc=none sealed as cv=none");
	tap_ok(dkim_signer_set_arc_authres(signer, "mx.example; dkim=none",
					   &error) < 0,
	       "late ARC results: refused after dkim_signer_finish()");
	dkim_signer_free(&signer);
	dkim_privkey_free(&key);
	dkim_resolver_free(&resolver);
	free(key_text);
}

int
main(void)
{
	struct stat st;

	if (stat(shared_dir(), &st) < 0 || !S_ISDIR(st.st_mode)) {
		static char reason[1100];

		snprintf(reason, sizeof(reason), "needs the test corpora in %s "
			 "(not present)", shared_dir());
		return tap_skip_all(reason);
	}
	golden("rfc-examples/rfc8463/A.3-signed.eml", 0,
	       "rfc-examples/rfc8463/A.3-unsigned-input.eml",
	       "rfc-examples/rfc8463/A.1-ed25519.private.b64",
	       "RFC 8463 A.3 ed25519-sha256 relaxed/relaxed");
	golden("rfc-examples/rfc8463/A.3-signed.eml", 1,
	       "rfc-examples/rfc8463/A.3-unsigned-input.eml",
	       "rfc-examples/rfc8463/A.1-rsa.private.pem",
	       "RFC 8463 A.3 rsa-sha256 relaxed/relaxed");
	golden("rfc-examples/rfc6376/A.2-signed-corrected.eml", 0,
	       "rfc-examples/rfc6376/A.2-signed-corrected.eml",
	       "rfc-examples/rfc6376/C-brisbane.private.pem",
	       "RFC 6376 A.2 rsa-sha256 simple/simple");
	arc_golden();
	arc_late_authres();
	return tap_done();
}

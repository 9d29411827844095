/* Golden vectors: signing the RFC 8463 Appendix A.3 and RFC 6376
 * Appendix A.2 messages with the published keys, timestamps and tag
 * lists must reproduce the published bh= and b= exactly.  Reads the
 * vectors from $DKIM_SHARED_DIR/corpus/rfc-examples. */
#include "dkim-private.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
read_file(const char *name, size_t *size_r)
{
	const char *shared = getenv("DKIM_SHARED_DIR");
	char path[1024];

	snprintf(path, sizeof(path), "%s/corpus/rfc-examples/%s",
		 shared != NULL ? shared : "../shared", name);
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

/* The n-th DKIM-Signature field of a message (with its CRLF). */
static char *
nth_signature(const char *msg, int n)
{
	const char *p = msg;

	for (;; p = strstr(p, "\r\n") + 2) {
		if (strncmp(p, "DKIM-Signature:", 15) == 0 && n-- == 0)
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
	char *field = nth_signature(signed_msg, index);
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
	char *result = dkim_sign_field_template(key, template, input,
						input_size, &error);
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

int
main(void)
{
	golden("rfc8463/A.3-signed.eml", 0, "rfc8463/A.3-unsigned-input.eml",
	       "rfc8463/A.1-ed25519.private.b64",
	       "RFC 8463 A.3 ed25519-sha256 relaxed/relaxed");
	golden("rfc8463/A.3-signed.eml", 1, "rfc8463/A.3-unsigned-input.eml",
	       "rfc8463/A.1-rsa.private.pem",
	       "RFC 8463 A.3 rsa-sha256 relaxed/relaxed");
	golden("rfc6376/A.2-signed-corrected.eml", 0,
	       "rfc6376/A.2-signed-corrected.eml",
	       "rfc6376/C-brisbane.private.pem",
	       "RFC 6376 A.2 rsa-sha256 simple/simple");
	return tap_done();
}

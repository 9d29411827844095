/* Authentication-Results fields (RFC 8601) for the dkim method, with
 * header.b (RFC 6008), and for the arc method (RFC 8617 §7.2), and
 * recognising fields that arrive with a message claiming our own
 * authserv-id (§5), so forged ones can be removed (authres-filter.c).
 *
 * Every value taken from the message was sanitized by the verifier; here
 * each is written as a token when it is one and as a quoted-string
 * otherwise, so no value can end the field or start a new one. */
#include "dkim-private.h"

#include <stdlib.h>
#include <string.h>

#define HEADER_B_MIN_LEN 8
#define FOLD_WIDTH 78
/* "Authentication-Results: " precedes the value on the first line. */
#define FIELD_NAME_WIDTH 24

static bool
is_tspecial(char c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static bool
is_token(const char *value)
{
	if (*value == '\0')
		return false;
	for (const char *p = value; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c >= 0x7f || is_tspecial((char)c))
			return false;
	}
	return true;
}

static void
append_quoted(struct dkim_buf *dest, const char *value)
{
	dkim_buf_append_c(dest, '"');
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			dkim_buf_append_c(dest, '\\');
		dkim_buf_append_c(dest, *p);
	}
	dkim_buf_append_c(dest, '"');
}

static void
append_value(struct dkim_buf *dest, const char *value)
{
	if (is_token(value))
		dkim_buf_append_str(dest, value);
	else
		append_quoted(dest, value);
}

static bool
is_atext_or_dot(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

/* header.i may be written as [local-part] "@" domain (RFC 8601 pvalue). */
static void
append_identity(struct dkim_buf *dest, const char *identity)
{
	const char *at = strchr(identity, '@');
	bool plain = at != NULL && strchr(at + 1, '@') == NULL &&
		at[1] != '\0';

	for (const char *p = identity; plain && *p != '\0'; p++) {
		if (p != at && !is_atext_or_dot(*p))
			plain = false;
	}
	if (plain)
		dkim_buf_append_str(dest, identity);
	else
		append_quoted(dest, identity);
}

/* An item is a unit that folding never splits. */
struct items {
	char **texts;
	size_t count;
};

static void
items_add(struct items *items, struct dkim_buf *text)
{
	items->texts = dkim_realloc(items->texts,
				    (items->count + 1) * sizeof(*items->texts));
	items->texts[items->count++] = dkim_buf_steal(text);
}

static void
items_add_property(struct items *items, const char *name, const char *value,
		   void (*append)(struct dkim_buf *, const char *))
{
	struct dkim_buf text = { 0 };

	if (value == NULL || *value == '\0')
		return;
	dkim_buf_append_str(&text, name);
	dkim_buf_append_c(&text, '=');
	append(&text, value);
	items_add(items, &text);
}

static void
items_free(struct items *items)
{
	for (size_t i = 0; i < items->count; i++)
		free(items->texts[i]);
	free(items->texts);
}

/* The shortest prefix of b= (at least 8 characters) that tells this
 * signature apart from the others (RFC 6008 §4). */
static char *
header_b_prefix(const dkim_verifier *verifier, size_t index)
{
	const char *b = dkim_verifier_signature(verifier, index)->b;
	size_t count = dkim_verifier_signature_count(verifier);
	size_t b_len = strlen(b), len = HEADER_B_MIN_LEN;

	for (size_t i = 0; i < count && len < b_len; i++) {
		const char *other = dkim_verifier_signature(verifier, i)->b;
		if (i == index || other == NULL)
			continue;
		while (len < b_len && strncmp(b, other, len) == 0)
			len++;
	}
	return dkim_strndup(b, len < b_len ? len : b_len);
}

static void
add_comment(struct items *items, const struct dkim_signature_result *sig)
{
	struct dkim_buf text = { 0 };

	if (sig->key_bits == 0)
		return;
	if (sig->key_type == DKIM_KEY_ED25519)
		dkim_buf_append_str(&text, "(Ed25519 key");
	else
		dkim_buf_printf(&text, "(%u-bit RSA key", sig->key_bits);
	dkim_buf_printf(&text, "; DNSSEC %s", dkim_dnssec_name(sig->dnssec));
	if (sig->key_testing)
		dkim_buf_append_str(&text, "; key in testing mode");
	dkim_buf_append_c(&text, ')');
	items_add(items, &text);
}

/* "method=result", then reason="..." when there is an explanation. */
static void
add_result(struct items *items, const char *method, enum dkim_result result,
	   const char *explanation)
{
	struct dkim_buf text = { 0 };

	dkim_buf_printf(&text, "%s=%s", method, dkim_result_name(result));
	items_add(items, &text);
	if (explanation != NULL) {
		dkim_buf_append_str(&text, "reason=");
		append_quoted(&text, explanation);
		items_add(items, &text);
	}
}

/* Alignment is not a dkim= property (RFC 8601 §2.7.1), but a reader
 * wondering why a valid signature counts for nothing must learn that the
 * message has no author domain, and why.  Several From fields are the
 * result's own reason already. */
static void
add_author_comment(struct items *items, const dkim_verifier *verifier,
		   const struct dkim_signature_result *sig)
{
	enum dkim_author_status author = dkim_verifier_author_status(verifier);
	struct dkim_buf text = { 0 };

	if (author == DKIM_AUTHOR_FOUND ||
	    (author == DKIM_AUTHOR_MULTIPLE_FROM &&
	     sig->reason == DKIM_REASON_MULTIPLE_FROM))
		return;
	dkim_buf_printf(&text, "(no author domain: %s)",
			dkim_author_status_text(author));
	items_add(items, &text);
}

static void
add_resinfo(struct items *items, const dkim_verifier *verifier, size_t index)
{
	const struct dkim_signature_result *sig =
		dkim_verifier_signature(verifier, index);

	add_result(items, "dkim", sig->result, sig->explanation);
	add_comment(items, sig);
	add_author_comment(items, verifier, sig);
	items_add_property(items, "header.d", sig->domain, append_value);
	items_add_property(items, "header.i", sig->identity, append_identity);
	items_add_property(items, "header.s", sig->selector, append_value);
	items_add_property(items, "header.a", sig->algorithm, append_value);
	if (sig->b != NULL && *sig->b != '\0') {
		char *prefix = header_b_prefix(verifier, index);
		items_add_property(items, "header.b", prefix, append_value);
		free(prefix);
	}
}

/* No smtp.remote-ip: the library does not see the connection. */
static void
add_arc_resinfo(struct items *items, const struct dkim_arc_result *arc)
{
	struct dkim_buf text = { 0 };

	add_result(items, "arc", arc->cv, arc->explanation);
	if (arc->cv == DKIM_RESULT_PASS) {
		dkim_buf_printf(&text, "header.oldest-pass=%u",
				arc->oldest_pass);
		items_add(items, &text);
	}
}

/* Appends one result's items: on one line, or folded to FOLD_WIDTH. */
static void
append_items(struct dkim_buf *dest, const struct items *items, bool fold)
{
	size_t column = 1; /* after the TAB that starts the line */

	if (fold)
		dkim_buf_append_str(dest, "\r\n\t");
	else
		dkim_buf_append_c(dest, ' ');
	for (size_t i = 0; i < items->count; i++) {
		size_t len = strlen(items->texts[i]);
		if (i > 0) {
			if (fold && column + 1 + len > FOLD_WIDTH) {
				dkim_buf_append_str(dest, "\r\n\t");
				column = 1;
			} else {
				dkim_buf_append_c(dest, ' ');
				column++;
			}
		}
		dkim_buf_append(dest, items->texts[i], len);
		column += len;
	}
}

char *
dkim_authres_value(const dkim_verifier *verifier, const char *authserv_id,
		   unsigned flags)
{
	bool fold = (flags & DKIM_AUTHRES_FOLD) != 0;
	size_t count = dkim_verifier_signature_count(verifier);
	struct dkim_buf value = { 0 };
	char *shown_id = dkim_sanitize(authserv_id, strlen(authserv_id));

	append_value(&value, shown_id);
	free(shown_id);
	dkim_buf_append_c(&value, ';');
	if (count == 0) {
		struct items none = { 0 };
		struct dkim_buf text = { 0 };

		dkim_buf_append_str(&text, "dkim=none");
		items_add(&none, &text);
		append_items(&value, &none, fold &&
			     value.len + FIELD_NAME_WIDTH + 10 > FOLD_WIDTH);
		items_free(&none);
	}
	for (size_t i = 0; i < count; i++) {
		struct items items = { 0 };

		add_resinfo(&items, verifier, i);
		append_items(&value, &items, fold);
		items_free(&items);
		if (i + 1 < count)
			dkim_buf_append_c(&value, ';');
	}

	const struct dkim_arc_result *arc;
	if (dkim_verifier_arc(verifier, &arc) != DKIM_RESULT_NONE) {
		struct items items = { 0 };

		add_arc_resinfo(&items, arc);
		dkim_buf_append_c(&value, ';');
		append_items(&value, &items, fold);
		items_free(&items);
	}
	return dkim_buf_steal(&value);
}

/* ---- recognising our own fields (the rule is stated in dkim.h) ---- */

static const char authres_name[] = "Authentication-Results";
#define AUTHRES_NAME_LEN (sizeof(authres_name) - 1)

static bool
is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* RFC 2045 token characters: printable US-ASCII but the tspecials. */
static bool
is_token_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && !is_tspecial((char)c);
}

static size_t
skip_cfws(const char *value, size_t len, size_t pos)
{
	while (pos < len) {
		char c = value[pos];

		if (c == '(')
			pos = dkim_skip_comment(value, len, pos);
		else if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			pos++;
		else
			break;
	}
	return pos;
}

static size_t
without_trailing_dots(const char *id, size_t len)
{
	while (len > 0 && id[len - 1] == '.')
		len--;
	return len;
}

/* Compared as a domain name: ASCII case-insensitively, trailing dots
 * ignored; an empty id is nobody's. */
static bool
id_is_ours(const struct dkim_buf *id, const char *authserv_id)
{
	size_t ours_len = without_trailing_dots(authserv_id,
						strlen(authserv_id));

	return ours_len > 0 &&
		dkim_mem_equal_icase(id->data, without_trailing_dots(id->data,
								     id->len),
				     authserv_id, ours_len);
}

/* The readings of the authserv-id's text, built byte by byte. */
struct id_readings {
	/* up to the first byte that cannot be part of a token */
	struct dkim_buf token;
	/* the same once control characters, which nobody sees, are deleted */
	struct dkim_buf visible;
	/* a quoted-string's whole content, control characters deleted: an
	 * id such as "mx;1" has to be quoted (and is, in ours) */
	struct dkim_buf quoted;
	bool token_ended, visible_ended;
};

static void
id_readings_add(struct id_readings *id, unsigned char c, bool quoted)
{
	if (quoted && !is_control(c))
		dkim_buf_append_c(&id->quoted, (char)c);
	if (!id->token_ended) {
		if (is_token_char(c))
			dkim_buf_append_c(&id->token, (char)c);
		else
			id->token_ended = true;
	}
	if (!id->visible_ended && !is_control(c)) {
		if (is_token_char(c))
			dkim_buf_append_c(&id->visible, (char)c);
		else
			id->visible_ended = true;
	}
}

static bool
ends_unquoted_id(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		c == '(' || c == ';';
}

/* dkim_authres_is_ours(), for a value that may have been cut short
 * (!complete): an authserv-id that the cut leaves unfinished is ours. */
static bool
value_is_ours(const char *value, size_t len, bool complete,
	      const char *authserv_id)
{
	struct id_readings id = { 0 };
	size_t pos = skip_cfws(value, len, 0);
	bool ours;

	if (pos == len)
		return !complete;
	if (value[pos] == '"') {
		for (pos++; pos < len && value[pos] != '"'; pos++) {
			if (value[pos] == '\\' && pos + 1 < len)
				pos++;
			id_readings_add(&id, (unsigned char)value[pos], true);
		}
	} else {
		for (; pos < len && !ends_unquoted_id(value[pos]); pos++)
			id_readings_add(&id, (unsigned char)value[pos], false);
	}
	if (pos == len && !complete)
		ours = true;
	else {
		ours = id_is_ours(&id.token, authserv_id) ||
			id_is_ours(&id.visible, authserv_id) ||
			id_is_ours(&id.quoted, authserv_id);
	}
	dkim_buf_free(&id.token);
	dkim_buf_free(&id.visible);
	dkim_buf_free(&id.quoted);
	return ours;
}

bool
dkim_authres_is_ours(const char *value, size_t len, const char *authserv_id)
{
	return value_is_ours(value, len, true, authserv_id);
}

/* Whether `part` reads as an Authentication-Results field of ours: its
 * name is the text before its first ':' with SP and control characters
 * deleted. */
static bool
part_is_ours(const char *part, size_t len, bool complete,
	     const char *authserv_id)
{
	char name[AUTHRES_NAME_LEN];
	size_t name_len = 0, pos;

	for (pos = 0; pos < len && part[pos] != ':'; pos++) {
		unsigned char c = (unsigned char)part[pos];

		if (c == ' ' || is_control(c))
			continue;
		if (name_len == AUTHRES_NAME_LEN)
			return false;
		name[name_len++] = (char)c;
		if (!dkim_mem_equal_icase(name, name_len, authres_name,
					  name_len))
			return false;
	}
	if (pos == len) {
		/* no colon: it may be past the cut */
		return !complete;
	}
	return name_len == AUTHRES_NAME_LEN &&
		value_is_ours(part + pos + 1, len - pos - 1, complete,
			      authserv_id);
}

/* A CR that some readers (Python's email package among them) take for the
 * end of a line: not followed by LF, nor by SP or HTAB, which would fold
 * the line for them. */
static bool
is_line_breaking_cr(const char *field, size_t len, size_t pos)
{
	return field[pos] == '\r' && pos + 1 < len && field[pos + 1] != '\n' &&
		!dkim_is_wsp((unsigned char)field[pos + 1]);
}

bool
dkim_authres_field_is_ours(const char *field, size_t len, bool complete,
			   const char *authserv_id)
{
	const char *cr;
	size_t start = 0;

	if (part_is_ours(field, len, complete, authserv_id))
		return true;
	/* The pieces are disjoint: the work stays linear in len. */
	for (cr = memchr(field, '\r', len); cr != NULL;
	     cr = memchr(cr + 1, '\r', len - (size_t)(cr + 1 - field))) {
		size_t pos = (size_t)(cr - field);

		if (!is_line_breaking_cr(field, len, pos))
			continue;
		if (part_is_ours(field + start, pos - start, true, authserv_id))
			return true;
		start = pos + 1;
	}
	return start > 0 && part_is_ours(field + start, len - start, complete,
					 authserv_id);
}

/* Tag=value lists (RFC 6376 §3.2), shared by DKIM-Signature fields and
 * key records.
 *
 *   tag-list  = tag-spec *( ";" tag-spec ) [ ";" ]
 *   tag-spec  = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 *   tag-name  = ALPHA *ALNUMPUNC
 *   tag-value = [ tval *( 1*(WSP / FWS) tval ) ]
 *
 * VALCHAR is %x21-3A / %x3C-7E; octets above 0x7F are accepted too, as
 * RFC 8616 allows UTF-8 in some values.  Controls are refused. */
#include "dkim-private.h"

#include <string.h>

static bool
is_fws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_alnumpunc(unsigned char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

static bool
is_valchar(unsigned char c)
{
	return c > 0x20 && c != ';' && c != 0x7f;
}

static size_t
skip_fws(const char *text, size_t len, size_t pos)
{
	while (pos < len && is_fws((unsigned char)text[pos]))
		pos++;
	return pos;
}

static enum dkim_taglist_error
syntax_error(struct dkim_error *error, const char *what, size_t pos)
{
	dkim_error_set(error, "%s at offset %zu", what, pos);
	return DKIM_TAGLIST_SYNTAX;
}

enum dkim_taglist_error
dkim_taglist_parse(const char *text, size_t len, struct dkim_taglist *list_r,
		   struct dkim_error *error)
{
	size_t pos = 0;

	list_r->count = 0;
	for (;;) {
		pos = skip_fws(text, len, pos);
		if (pos == len)
			return DKIM_TAGLIST_OK; /* empty list or trailing ';' */

		size_t name_start = pos;
		if (!is_alpha((unsigned char)text[pos]))
			return syntax_error(error, "bad tag name", pos);
		while (pos < len && is_alnumpunc((unsigned char)text[pos]))
			pos++;
		size_t name_len = pos - name_start;

		pos = skip_fws(text, len, pos);
		if (pos == len || text[pos] != '=')
			return syntax_error(error, "missing '=' after tag name",
					    pos);
		pos++;

		size_t raw_start = pos;
		pos = skip_fws(text, len, pos);
		size_t value_start = pos, value_end = pos;
		while (pos < len && text[pos] != ';') {
			unsigned char c = (unsigned char)text[pos];
			if (is_valchar(c))
				value_end = pos + 1;
			else if (!is_fws(c))
				return syntax_error(error,
					"invalid character in tag value", pos);
			pos++;
		}

		if (list_r->count == DKIM_MAX_TAGS)
			return syntax_error(error, "too many tags", name_start);
		for (unsigned i = 0; i < list_r->count; i++) {
			const struct dkim_tag *old = &list_r->tags[i];
			if (old->name_len == name_len &&
			    memcmp(old->name, text + name_start, name_len) == 0) {
				dkim_error_set(error, "duplicate tag %.*s=",
					       (int)name_len, text + name_start);
				return DKIM_TAGLIST_DUPLICATE;
			}
		}
		struct dkim_tag *tag = &list_r->tags[list_r->count++];
		tag->name = text + name_start;
		tag->name_len = name_len;
		tag->value = text + value_start;
		tag->value_len = value_end - value_start;
		tag->raw_value_start = raw_start;
		tag->raw_value_end = pos;

		if (pos == len)
			return DKIM_TAGLIST_OK;
		pos++; /* ';' */
	}
}

const struct dkim_tag *
dkim_taglist_find(const struct dkim_taglist *list, const char *name)
{
	size_t name_len = strlen(name);

	for (unsigned i = 0; i < list->count; i++) {
		const struct dkim_tag *tag = &list->tags[i];
		if (tag->name_len == name_len &&
		    memcmp(tag->name, name, name_len) == 0)
			return tag;
	}
	return NULL;
}

bool
dkim_tag_value_is(const struct dkim_tag *tag, const char *value)
{
	return tag->value_len == strlen(value) &&
		memcmp(tag->value, value, tag->value_len) == 0;
}

bool
dkim_tag_list_next(const struct dkim_tag *tag, size_t *pos,
		   const char **item_r, size_t *item_len_r)
{
	const char *value = tag->value;
	size_t len = tag->value_len, i = *pos;

	if (i > len)
		return false;
	size_t start = skip_fws(value, len, i);
	size_t end = start;
	while (end < len && value[end] != ':')
		end++;
	*pos = end + 1;

	size_t item_end = end;
	while (item_end > start && is_fws((unsigned char)value[item_end - 1]))
		item_end--;
	*item_r = value + start;
	*item_len_r = item_end - start;
	return true;
}

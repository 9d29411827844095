/* The author domain: the domain of the single mailbox in the From field
 * (RFC 5322 §3.6.2), as DMARC alignment needs it. */
#include "dkim-private.h"

#include <stdlib.h>
#include <string.h>

/* Copies the value with comments removed and the insides of quoted
 * strings blanked out, so that only structural '<', '>', ',' and '@'
 * remain meaningful. */
static void
strip_comments_and_quotes(const char *value, size_t len, struct dkim_buf *out)
{
	bool quoted = false;

	for (size_t i = 0; i < len; i++) {
		char c = value[i];

		if (quoted) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '"')
				quoted = false;
			dkim_buf_append_c(out, c == '"' && !quoted ? '"' : 'q');
		} else if (c == '(') {
			i = dkim_skip_comment(value, len, i) - 1;
			dkim_buf_append_c(out, ' ');
		} else {
			if (c == '"')
				quoted = true;
			dkim_buf_append_c(out, c == '\r' || c == '\n' ? ' ' : c);
		}
	}
}

/* A ',', ':' or ';' outside quotes: a list or a group.  By length, not
 * as a C string: a NUL byte must not hide a second address. */
static bool
has_list_separator(const char *text, size_t len)
{
	return memchr(text, ',', len) != NULL ||
		memchr(text, ':', len) != NULL ||
		memchr(text, ';', len) != NULL;
}

char *
dkim_from_domain(const char *value, size_t len)
{
	struct dkim_buf clean = { 0 };
	char *domain = NULL;

	strip_comments_and_quotes(value, len, &clean);
	if (clean.data == NULL)
		return NULL;

	const char *addr = clean.data, *addr_end = clean.data + clean.len;
	const char *lt = memchr(clean.data, '<', clean.len);
	if (lt != NULL) {
		const char *gt = memchr(lt, '>', (size_t)(addr_end - lt));
		if (gt == NULL || memchr(gt, '<', (size_t)(addr_end - gt)) != NULL)
			goto out;
		/* A ',' or ':' outside the angle brackets means a list or a
		 * group: no single author. */
		if (memchr(clean.data, ',', (size_t)(lt - clean.data)) != NULL ||
		    memchr(gt, ',', (size_t)(addr_end - gt)) != NULL ||
		    memchr(clean.data, ':', (size_t)(lt - clean.data)) != NULL)
			goto out;
		addr = lt + 1;
		addr_end = gt;
	} else if (has_list_separator(clean.data, clean.len)) {
		goto out;
	}

	const char *at = memrchr(addr, '@', (size_t)(addr_end - addr));
	if (at == NULL)
		goto out;
	const char *start = at + 1, *end = addr_end;
	while (start < end && dkim_is_wsp((unsigned char)*start))
		start++;
	while (end > start && dkim_is_wsp((unsigned char)end[-1]))
		end--;
	if (end > start && end[-1] == '.')
		end--;
	if (!dkim_domain_is_valid(start, (size_t)(end - start)))
		goto out;

	domain = dkim_strndup(start, (size_t)(end - start));
	for (char *p = domain; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + ('a' - 'A'));
	}
out:
	dkim_buf_free(&clean);
	return domain;
}

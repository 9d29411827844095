/* The author address: see milter-from.h. */
#include "milter-from.h"
#include "dkim.h"
#include "dkim-util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The addr-spec: between the first '<' and the next '>' outside quotes
 * and comments, else the whole value. */
static void
find_addr_spec(const char *value, size_t len, size_t *start_r,
	       size_t *end_r)
{
	bool quoted = false;
	unsigned comment = 0;

	*start_r = 0;
	*end_r = len;
	for (size_t i = 0; i < len; i++) {
		char c = value[i];

		if (c == '\\' && (quoted || comment > 0))
			i++;
		else if (quoted)
			quoted = c != '"';
		else if (c == '(')
			comment++;
		else if (c == ')' && comment > 0)
			comment--;
		else if (comment > 0)
			continue;
		else if (c == '"')
			quoted = true;
		else if (c == '<' && *start_r == 0)
			*start_r = i + 1;
		else if (c == '>' && *start_r != 0) {
			*end_r = i;
			return;
		}
	}
}

/* The address without comments, quotes and folding whitespace; false for
 * what cannot be part of one mailbox. */
static bool
clean_address(const char *spec, size_t len, struct dkim_buf *out,
	      size_t *at_r)
{
	bool quoted = false, found_at = false;
	unsigned comment = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)spec[i];

		if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
			return false;
		if (c == 0x7f)
			return false;
		if (comment > 0) {
			if (c == '\\')
				i++;
			else if (c == '(')
				comment++;
			else if (c == ')')
				comment--;
		} else if (quoted) {
			if (c == '\\' && i + 1 < len)
				c = (unsigned char)spec[++i];
			else if (c == '"') {
				quoted = false;
				continue;
			}
			if (c < 0x20 || c == 0x7f)
				return false;
			dkim_buf_append_c(out, (char)c);
		} else if (c == '"') {
			quoted = true;
		} else if (c == '(') {
			comment++;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			continue;
		} else if (strchr(",;:<>)[]\\", c) != NULL) {
			return false;
		} else {
			if (c == '@') {
				*at_r = out->len;
				found_at = true;
			}
			dkim_buf_append_c(out, (char)c);
		}
	}
	return found_at && !quoted && comment == 0;
}

char *
milter_from_address(const char *value, size_t len)
{
	struct dkim_buf addr = { 0 };
	size_t start, end, at = 0;
	char *ret = NULL;
	char *domain;

	if (dkim_author_domain(value, len, &domain) != DKIM_AUTHOR_FOUND)
		return NULL;
	find_addr_spec(value, len, &start, &end);
	if (clean_address(value + start, end - start, &addr, &at) && at > 0) {
		const char *own = addr.data + at + 1;
		size_t own_len = strlen(own);

		if (own_len > 0 && own[own_len - 1] == '.')
			own_len--;
		if (own_len == strlen(domain) &&
		    strncasecmp(own, domain, own_len) == 0)
			ret = dkim_strdup_printf("%.*s@%s", (int)at, addr.data,
						 domain);
	}
	dkim_buf_free(&addr);
	free(domain);
	return ret;
}

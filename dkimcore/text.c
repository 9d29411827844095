/* Small text helpers: whitespace, case-insensitive comparison, domain
 * syntax and sanitizing message-derived text for display. */
#include "dkim-private.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool
dkim_mem_equal_icase(const char *a, size_t a_len, const char *b, size_t b_len)
{
	if (a_len != b_len)
		return false;
	for (size_t i = 0; i < a_len; i++) {
		if (dkim_ascii_lower((unsigned char)a[i]) !=
		    dkim_ascii_lower((unsigned char)b[i]))
			return false;
	}
	return true;
}

char *
dkim_sanitize(const char *src, size_t len)
{
	static const char ellipsis[] = "...";
	bool truncated = len > DKIM_MAX_SHOWN;
	size_t shown = truncated ? DKIM_MAX_SHOWN - (sizeof(ellipsis) - 1) : len;
	char *dest = dkim_malloc(shown + sizeof(ellipsis));

	for (size_t i = 0; i < shown; i++) {
		unsigned char c = (unsigned char)src[i];
		dest[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (truncated)
		memcpy(dest + shown, ellipsis, sizeof(ellipsis));
	else
		dest[shown] = '\0';
	return dest;
}

static bool
is_label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Dot-separated labels of 1..63 label characters, at most
 * DKIM_MAX_DOMAIN_NAME octets.
 * Underscores are tolerated: they are valid in DNS and some senders use
 * them in selectors. */
static bool
labels_are_valid(const char *str, size_t len, unsigned min_labels)
{
	unsigned labels = 0;
	size_t label_len = 0;

	if (len == 0 || len > DKIM_MAX_DOMAIN_NAME)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)str[i];
		if (c == '.') {
			if (label_len == 0)
				return false;
			labels++;
			label_len = 0;
		} else if (!is_label_char(c) || ++label_len > 63) {
			return false;
		}
	}
	if (label_len == 0)
		return false;
	return labels + 1 >= min_labels;
}

bool
dkim_domain_is_valid(const char *str, size_t len)
{
	return labels_are_valid(str, len, 2);
}

bool
dkim_selector_is_valid(const char *str, size_t len)
{
	return labels_are_valid(str, len, 1);
}

bool
dkim_domain_syntax_ok(const char *domain)
{
	return domain != NULL && dkim_domain_is_valid(domain, strlen(domain));
}

bool
dkim_selector_syntax_ok(const char *selector)
{
	return selector != NULL &&
		dkim_selector_is_valid(selector, strlen(selector));
}

bool
dkim_domain_is_within(const char *sub, size_t sub_len, const char *domain,
		      size_t domain_len)
{
	if (sub_len == domain_len)
		return dkim_mem_equal_icase(sub, sub_len, domain, domain_len);
	if (sub_len < domain_len + 1)
		return false;
	return sub[sub_len - domain_len - 1] == '.' &&
		dkim_mem_equal_icase(sub + sub_len - domain_len, domain_len,
				     domain, domain_len);
}

size_t
dkim_skip_comment(const char *text, size_t len, size_t pos)
{
	unsigned depth = 0;

	for (; pos < len; pos++) {
		if (text[pos] == '\\')
			pos++;
		else if (text[pos] == '(')
			depth++;
		else if (text[pos] == ')' && --depth == 0)
			return pos + 1;
	}
	return len;
}

void
dkim_format_time(time_t t, char *dest, size_t size)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(dest, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(dest, size, "%lld", (long long)t);
}

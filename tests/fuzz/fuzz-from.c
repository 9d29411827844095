/* The author domain (dkim_author_domain()), which alignment depends on,
 * and the author address (dkim_author_address()).
 *
 * Input: a From field value.  Besides memory errors, it checks:
 * - a domain comes out exactly when the status says found, and it is a
 *   valid lowercase domain name;
 * - it is the domain a reader that looks no further than the first
 *   mailbox finds (first_mailbox_domain(), a deliberately simple model of
 *   Dovecot's message_address_parse() and of mail clients): alignment
 *   must trust the author the user is shown, never a later address;
 * - a list or a group (',', ';' or ':' outside quoted strings, comments,
 *   domain literals and angle brackets), a control character (NUL
 *   included) or a line break that does not fold leaves no author domain;
 * - CRLF and LF line breaks read the same (in a value without a bare CR,
 *   which turning CRLF into LF could pair with a LF);
 * - a local part comes out with the domain, shorter than the value and
 *   without line breaks, and the domain is dkim_author_domain()'s. */
#include "dkim-private.h"
#include "fuzz.h"

struct reader {
	const char *pos, *end;
};

/* Steps over a comment, a quoted string or a domain literal starting at
 * pos (backslash escapes included; comments nest), or one byte. */
static void
skip_unit(struct reader *r)
{
	char open = *r->pos, close = open == '(' ? ')' : open == '"' ? '"' :
		open == '[' ? ']' : '\0';
	size_t depth = 0;

	if (close == '\0') {
		r->pos++;
		return;
	}
	for (; r->pos < r->end; r->pos++) {
		if (*r->pos == '\\' && r->pos + 1 < r->end)
			r->pos++;
		else if (*r->pos == open && (open == '(' || depth == 0))
			depth++;
		else if (*r->pos == close && --depth == 0) {
			r->pos++;
			return;
		}
	}
}

static bool
is_unit_start(char c)
{
	return c == '(' || c == '"' || c == '[';
}

/* Moves to the first of `stops` outside comments, quoted strings and
 * domain literals; false at the end. */
static bool
find_top_level(struct reader *r, const char *stops)
{
	while (r->pos < r->end) {
		if (*r->pos != '\0' && strchr(stops, *r->pos) != NULL)
			return true;
		skip_unit(r);
	}
	return false;
}

static bool
is_domain_char(unsigned char c)
{
	return c == '.' || c == '-' || c == '_' || c >= 0x80 ||
		(c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		(c >= 'A' && c <= 'Z') ||
		(c != '\0' && strchr("!#$%&'*+/=?^`{|}~", c) != NULL);
}

/* The domain after the first mailbox's '@', as a reader that takes what
 * follows it (dropping whitespace and comments) until anything else: the
 * first '@' that is neither in a display name nor in a route.  NULL when
 * the value starts with a list separator or a group. */
static char *
first_mailbox_domain(const char *value, size_t size)
{
	struct reader r = { value, value + size };

	if (!find_top_level(&r, "<@,;:") || strchr(",;:", *r.pos) != NULL)
		return NULL;
	if (*r.pos == '<') {
		r.pos++;
		struct reader route = r;
		while (route.pos < route.end &&
		       (*route.pos == ' ' || *route.pos == '\t' ||
			*route.pos == '\r' || *route.pos == '\n' ||
			*route.pos == '('))
			skip_unit(&route);
		if (route.pos < route.end &&
		    (*route.pos == '@' || *route.pos == ',')) {
			if (!find_top_level(&route, ":>") || *route.pos != ':')
				return NULL;
			r.pos = route.pos + 1;
		}
		if (!find_top_level(&r, "@>") || *r.pos != '@')
			return NULL;
	}
	r.pos++;

	char *domain = dkim_malloc(size + 1);
	size_t len = 0;
	while (r.pos < r.end) {
		unsigned char c = (unsigned char)*r.pos;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			r.pos++;
		} else if (c == '(') {
			skip_unit(&r);
		} else if (is_domain_char(c)) {
			domain[len++] = dkim_ascii_lower((char)c);
			r.pos++;
		} else {
			break;
		}
	}
	domain[len] = '\0';
	return domain;
}

/* A ',', ';' or ':' outside comments, quoted strings, domain literals and
 * angle brackets (where a route has them). */
static bool
has_list_or_group(const char *value, size_t size)
{
	struct reader r = { value, value + size };
	bool in_angle = false;

	while (r.pos < r.end) {
		char c = *r.pos;

		if (c == '<')
			in_angle = true;
		else if (c == '>')
			in_angle = false;
		else if (!in_angle && (c == ',' || c == ';' || c == ':'))
			return true;
		if (is_unit_start(c))
			skip_unit(&r);
		else
			r.pos++;
	}
	return false;
}

/* A control character other than HTAB, or a CR or LF that is not part of
 * a line break followed by WSP or ending the value. */
static bool
has_stray_control(const char *value, size_t size)
{
	for (size_t i = 0; i < size; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c == '\r') {
			if (i + 1 == size || value[i + 1] != '\n')
				return true;
		} else if (c == '\n') {
			if (i + 1 < size && value[i + 1] != ' ' &&
			    value[i + 1] != '\t')
				return true;
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return true;
		}
	}
	return false;
}

static bool
has_bare_cr(const char *value, size_t size)
{
	for (size_t i = 0; i < size; i++) {
		if (value[i] == '\r' && (i + 1 == size || value[i + 1] != '\n'))
			return true;
	}
	return false;
}

/* The result with every CRLF turned into LF. */
static enum dkim_author_status
author_with_lf(const char *value, size_t size, char **domain_r)
{
	char *copy = dkim_malloc(size + 1);
	size_t len = 0;

	for (size_t i = 0; i < size; i++) {
		if (value[i] == '\r' && i + 1 < size && value[i + 1] == '\n')
			continue;
		copy[len++] = value[i];
	}
	enum dkim_author_status status = dkim_author_domain(copy, len,
							    domain_r);
	free(copy);
	return status;
}

static const char *
shown(const char *domain)
{
	return domain != NULL ? domain : "(none)";
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* libFuzzer passes an exactly sized copy: ASan sees any read past
	 * the value. */
	const char *value = (const char *)data;
	char *domain, *local_part;
	enum dkim_author_status status = dkim_author_address(value, size,
							     &local_part,
							     &domain);

	FUZZ_ASSERT((status == DKIM_AUTHOR_FOUND) == (domain != NULL) &&
		    (domain != NULL) == (local_part != NULL),
		    "status \"%s\" with domain %s, local part %s",
		    dkim_author_status_text(status), shown(domain),
		    shown(local_part));
	if (local_part != NULL) {
		FUZZ_ASSERT(strlen(local_part) < size &&
			    strpbrk(local_part, "\r\n") == NULL,
			    "local part \"%s\": longer than the value, or "
			    "with a line break", local_part);
	}
	free(local_part);
	char *domain_only;
	enum dkim_author_status domain_status =
		dkim_author_domain(value, size, &domain_only);
	FUZZ_ASSERT(domain_status == status &&
		    (domain == NULL ? domain_only == NULL :
		     domain_only != NULL && strcmp(domain, domain_only) == 0),
		    "dkim_author_domain() differs from dkim_author_address()");
	free(domain_only);
	FUZZ_ASSERT(status != DKIM_AUTHOR_NO_FROM &&
		    status != DKIM_AUTHOR_MULTIPLE_FROM &&
		    status != DKIM_AUTHOR_DISPUTED,
		    "a field value cannot say \"%s\"",
		    dkim_author_status_text(status));

	if (!has_bare_cr(value, size)) {
		char *lf_domain;
		enum dkim_author_status lf_status =
			author_with_lf(value, size, &lf_domain);
		FUZZ_ASSERT(lf_status == status &&
			    (domain == NULL ? lf_domain == NULL :
			     lf_domain != NULL &&
			     strcmp(domain, lf_domain) == 0),
			    "with LF line breaks: %s (%s) instead of %s (%s)",
			    shown(lf_domain),
			    dkim_author_status_text(lf_status),
			    shown(domain), dkim_author_status_text(status));
		free(lf_domain);
	}

	if (domain != NULL) {
		size_t len = strlen(domain);

		FUZZ_ASSERT(dkim_domain_is_valid(domain, len),
			    "invalid author domain \"%s\"", domain);
		for (size_t i = 0; i < len; i++)
			FUZZ_ASSERT(domain[i] < 'A' || domain[i] > 'Z',
				    "author domain \"%s\" is not lowercase",
				    domain);
		FUZZ_ASSERT(!has_stray_control(value, size),
			    "author domain %s despite a control character",
			    domain);
		FUZZ_ASSERT(!has_list_or_group(value, size),
			    "author domain %s of a list or a group", domain);
		char *first = first_mailbox_domain(value, size);
		FUZZ_ASSERT(first != NULL && strcmp(first, domain) == 0,
			    "author domain %s, but the first mailbox reads %s",
			    domain, shown(first));
		free(first);
	}
	free(domain);
	return 0;
}

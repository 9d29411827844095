/* The author domain: the domain of the single mailbox in the From field
 * (RFC 5322 §3.6.2, RFC 7489 §3.2), which alignment compares d= with.
 *
 * The value is read as RFC 5322 §3.4 defines an address-list, obsolete
 * forms included (§4.4: CFWS around dots and in routes, obs-local-part,
 * obs-domain, obs-phrase, obs-route), but nothing looser: whatever a
 * reader could take for a different author makes the answer "none", since
 * the domain a mail client shows is the one the user trusts.  In
 * particular:
 *
 * - exactly one mailbox, outside any group: a list, a group (RFC 6854
 *   allows one in From, but which member is the author is anybody's
 *   guess), an empty value or an empty list element (obs-mbox-list's
 *   ",,", which readers skip or not) has no author domain;
 * - the domain is a domain name: dot-separated labels of letters, digits,
 *   '-' and '_' (dkim_domain_is_valid()), ASCII only, the last not all
 *   digits (RFC 3696 §2: that is an IPv4 address); a domain-literal or a
 *   trailing dot is not one;
 * - control characters (NUL included) are refused everywhere, and CR and
 *   LF only appear as folding (a line break followed by WSP) or as the
 *   value's final line break: a reader that stops at a NUL or a line
 *   break must not see a different author;
 * - 8-bit bytes are text (RFC 6532 allows UTF-8 in atoms, quoted strings
 *   and comments; legacy mail has raw 8-bit names): they never make or
 *   hide a structural character.
 *
 * The parser reads each byte once, keeps no stack (comment nesting is a
 * counter) and allocates only the result. */
#include "dkim-private.h"

#include <stdlib.h>
#include <string.h>

enum token_kind {
	TOKEN_END = 0,
	TOKEN_ATOM,		/* 1*atext */
	TOKEN_QUOTED,		/* quoted-string */
	TOKEN_LITERAL,		/* domain-literal */
	TOKEN_SPECIAL,		/* one of < > @ , : ; . */
	TOKEN_ERROR,
};

struct token {
	enum token_kind kind;
	const char *start;	/* where it stands in the value */
	size_t len;
	char special;		/* TOKEN_SPECIAL: the character */
};

struct from_parser {
	const char *pos, *end;
	struct token token;	/* the next token, CFWS skipped before it */

	unsigned mailboxes;	/* outside groups */
	bool group;
	/* The first mailbox's domain, as atoms joined by dots. */
	char domain[DKIM_MAX_DOMAIN_NAME + 1];
	size_t domain_len;
	bool domain_too_long;
	bool domain_literal;
	/* The first mailbox's local part, as it stands in the value. */
	const char *local_start, *local_end;
};

/* RFC 5322 §3.2.3 atext, with RFC 6532's 8-bit bytes. */
static bool
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c >= 0x80 ||
		(c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* What quoted strings, comments and domain literals hold besides FWS,
 * quoted-pairs and their own delimiters: VCHAR and 8-bit bytes. */
static bool
is_text(unsigned char c)
{
	return c > ' ' && c != 0x7f;
}

/* Steps over one FWS character or a line break that folds (followed by
 * WSP) or ends the value.  False at anything else. */
static bool
skip_fws_char(struct from_parser *parser)
{
	const char *p = parser->pos;

	if (dkim_is_wsp((unsigned char)*p)) {
		parser->pos++;
		return true;
	}
	if (*p == '\r' && p + 1 < parser->end && p[1] == '\n')
		p++;
	if (*p != '\n')
		return false;
	p++;
	if (p < parser->end && !dkim_is_wsp((unsigned char)*p))
		return false;
	parser->pos = p;
	return true;
}

/* With pos after a backslash: the quoted-pair's second character. */
static bool
skip_quoted_pair(struct from_parser *parser)
{
	if (parser->pos == parser->end)
		return false;
	unsigned char c = (unsigned char)*parser->pos;
	if (!is_text(c) && !dkim_is_wsp(c))
		return false;
	parser->pos++;
	return true;
}

/* With pos at an opening '(', '"' or '[': past the matching closing
 * character.  Inside are FWS, quoted-pairs and text (is_text()) but for
 * the delimiters: comments nest, which is counted, not recursed into;
 * qtext excludes '"', dtext '[' and ']'. */
static bool
skip_enclosed(struct from_parser *parser)
{
	char open = *parser->pos;
	char close = open == '(' ? ')' : open == '"' ? '"' : ']';
	size_t depth = 1;

	parser->pos++;
	while (parser->pos < parser->end) {
		char c = *parser->pos;

		if (c == close) {
			parser->pos++;
			if (--depth == 0)
				return true;
		} else if (c == open) {
			if (open != '(')
				return false;
			depth++;
			parser->pos++;
		} else if (c == '\\') {
			parser->pos++;
			if (!skip_quoted_pair(parser))
				return false;
		} else if (is_text((unsigned char)c)) {
			parser->pos++;
		} else if (!skip_fws_char(parser)) {
			return false;
		}
	}
	return false;
}

static bool
skip_cfws(struct from_parser *parser)
{
	while (parser->pos < parser->end) {
		if (*parser->pos == '(') {
			if (!skip_enclosed(parser))
				return false;
		} else if (!skip_fws_char(parser)) {
			/* Not CFWS: the next token starts here, unless it is
			 * a line break that neither folds nor ends. */
			return *parser->pos != '\r' && *parser->pos != '\n';
		}
	}
	return true;
}

static void
next_token(struct from_parser *parser)
{
	struct token *token = &parser->token;

	memset(token, 0, sizeof(*token));
	if (!skip_cfws(parser)) {
		token->kind = TOKEN_ERROR;
		return;
	}
	if (parser->pos == parser->end) {
		token->kind = TOKEN_END;
		return;
	}

	char c = *parser->pos;
	token->start = parser->pos;
	if (is_atext((unsigned char)c)) {
		token->kind = TOKEN_ATOM;
		while (parser->pos < parser->end &&
		       is_atext((unsigned char)*parser->pos))
			parser->pos++;
	} else if (c == '"' || c == '[') {
		token->kind = !skip_enclosed(parser) ? TOKEN_ERROR :
			c == '"' ? TOKEN_QUOTED : TOKEN_LITERAL;
	} else if (c != '\0' && strchr("<>@,:;.", c) != NULL) {
		token->kind = TOKEN_SPECIAL;
		token->special = c;
		parser->pos++;
	} else {
		/* ')', ']', '\\' or a control character */
		token->kind = TOKEN_ERROR;
	}
	token->len = (size_t)(parser->pos - token->start);
}

static bool
token_is(const struct from_parser *parser, char special)
{
	return parser->token.kind == TOKEN_SPECIAL &&
		parser->token.special == special;
}

static bool
token_is_word(const struct from_parser *parser)
{
	return parser->token.kind == TOKEN_ATOM ||
		parser->token.kind == TOKEN_QUOTED;
}

/* The shape of a run of words and dots, which is a display-name (or a
 * group name) or a local-part depending on what follows it. */
struct words {
	const char *start, *end;	/* where they stand in the value */
	size_t count;		/* words and dots */
	bool starts_with_word;	/* a phrase must (RFC 5322 §3.2.5) */
	bool local_part;	/* word *("." word) */
};

static void
read_words(struct from_parser *parser, struct words *words_r)
{
	bool want_word = true;

	memset(words_r, 0, sizeof(*words_r));
	words_r->local_part = true;
	while (token_is_word(parser) || token_is(parser, '.')) {
		bool word = token_is_word(parser);

		if (words_r->count++ == 0) {
			words_r->starts_with_word = word;
			words_r->start = parser->token.start;
		}
		words_r->end = parser->pos;
		if (word != want_word)
			words_r->local_part = false;
		want_word = !word;
		next_token(parser);
	}
	if (words_r->count == 0 || want_word)
		words_r->local_part = false;
}

static void
domain_append(struct from_parser *parser, const char *text, size_t len)
{
	if (parser->domain_len + len > DKIM_MAX_DOMAIN_NAME) {
		parser->domain_too_long = true;
		return;
	}
	memcpy(parser->domain + parser->domain_len, text, len);
	parser->domain_len += len;
}

/* With the token after '@': domain = dot-atom / domain-literal /
 * obs-domain; CFWS between the atoms and dots is the obsolete form, and
 * the lexer has dropped it already. */
static bool
parse_domain(struct from_parser *parser, bool author)
{
	if (parser->token.kind == TOKEN_LITERAL) {
		if (author)
			parser->domain_literal = true;
		next_token(parser);
		return true;
	}
	for (;;) {
		if (parser->token.kind != TOKEN_ATOM)
			return false;
		if (author)
			domain_append(parser, parser->token.start,
				      parser->token.len);
		next_token(parser);
		if (!token_is(parser, '.'))
			return true;
		if (author)
			domain_append(parser, ".", 1);
		next_token(parser);
	}
}

/* With the local part read and the token at '@'. */
static bool
parse_at_domain(struct from_parser *parser, const struct words *local_part,
		bool author)
{
	if (!local_part->local_part || !token_is(parser, '@'))
		return false;
	if (author) {
		parser->local_start = local_part->start;
		parser->local_end = local_part->end;
	}
	next_token(parser);
	return parse_domain(parser, author);
}

/* obs-route = obs-domain-list ":", with obs-domain-list =
 * *(CFWS / ",") "@" domain *("," [CFWS] ["@" domain]).  The route is
 * syntax to accept, not a part of the author's address. */
static bool
parse_obs_route(struct from_parser *parser)
{
	while (token_is(parser, ','))
		next_token(parser);
	if (!token_is(parser, '@'))
		return false;
	next_token(parser);
	if (!parse_domain(parser, false))
		return false;
	while (token_is(parser, ',')) {
		next_token(parser);
		if (token_is(parser, '@')) {
			next_token(parser);
			if (!parse_domain(parser, false))
				return false;
		}
	}
	if (!token_is(parser, ':'))
		return false;
	next_token(parser);
	return true;
}

/* With the token after '<': [obs-route] addr-spec ">". */
static bool
parse_angle_addr(struct from_parser *parser, bool author)
{
	struct words local_part;

	if ((token_is(parser, '@') || token_is(parser, ',')) &&
	    !parse_obs_route(parser))
		return false;
	read_words(parser, &local_part);
	if (!parse_at_domain(parser, &local_part, author) ||
	    !token_is(parser, '>'))
		return false;
	next_token(parser);
	return true;
}

static bool parse_group(struct from_parser *parser);

/* mailbox = name-addr / addr-spec, or with `group_allowed`, address =
 * mailbox / group (which sets parser->group).  `author`: the domain is
 * the author domain candidate. */
static bool
parse_mailbox(struct from_parser *parser, bool author, bool group_allowed)
{
	struct words words;

	read_words(parser, &words);
	if (token_is(parser, '@'))
		return parse_at_domain(parser, &words, author);
	if (token_is(parser, '<')) {
		/* display-name = phrase, and it is optional */
		if (words.count > 0 && !words.starts_with_word)
			return false;
		next_token(parser);
		return parse_angle_addr(parser, author);
	}
	if (group_allowed && token_is(parser, ':') && words.starts_with_word)
		return parse_group(parser);
	return false;
}

/* With the token at ':' after the group's display-name:
 * ":" [group-list] ";", where group-list = mailbox-list / CFWS /
 * obs-group-list, and obs-group-list and obs-mbox-list allow empty
 * elements.  Groups do not nest. */
static bool
parse_group(struct from_parser *parser)
{
	parser->group = true;
	next_token(parser);
	while (!token_is(parser, ';')) {
		if (token_is(parser, ',')) {
			next_token(parser);
			continue;
		}
		if (!parse_mailbox(parser, false, false))
			return false;
		if (!token_is(parser, ',') && !token_is(parser, ';'))
			return false;
	}
	next_token(parser);
	return true;
}

static bool
is_domain_name(const char *name, size_t len)
{
	if (!dkim_domain_is_valid(name, len))
		return false;
	while (len > 0 && name[len - 1] >= '0' && name[len - 1] <= '9')
		len--;
	return len > 0 && name[len - 1] != '.';
}

/* The whole value: address *("," address).  An empty element
 * (obs-addr-list) is refused, see the top of the file. */
static enum dkim_author_status
parse_value(struct from_parser *parser)
{
	next_token(parser);
	if (parser->token.kind == TOKEN_END)
		return DKIM_AUTHOR_NO_MAILBOX;
	for (;;) {
		bool was_group = parser->group;

		/* Only the first mailbox can be the author; with another,
		 * there is none. */
		bool author = parser->mailboxes == 0 && !parser->group;
		if (!parse_mailbox(parser, author, true))
			return DKIM_AUTHOR_SYNTAX;
		if (parser->group == was_group)
			parser->mailboxes++;
		if (parser->token.kind == TOKEN_END)
			break;
		if (!token_is(parser, ','))
			return DKIM_AUTHOR_SYNTAX;
		next_token(parser);
	}
	if (parser->group)
		return DKIM_AUTHOR_GROUP;
	if (parser->mailboxes > 1)
		return DKIM_AUTHOR_SEVERAL_MAILBOXES;
	if (parser->domain_literal || parser->domain_too_long ||
	    !is_domain_name(parser->domain, parser->domain_len))
		return DKIM_AUTHOR_NOT_A_DOMAIN;
	return DKIM_AUTHOR_FOUND;
}

/* Appends what a quoted string's content between `start` and `end`
 * stands for: quoted-pairs without their backslash, folding without its
 * line break (RFC 5322 §3.2.4: the WSP after it stays). */
static void
append_unquoted(struct dkim_buf *text, const char *start, const char *end)
{
	for (const char *p = start; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '\r' || *p == '\n')
			continue;
		dkim_buf_append_c(text, *p);
	}
}

/* The text a local part the parser accepted stands for: its atoms and
 * dots, its quoted strings unquoted, CFWS left out.  It is lexed again,
 * as it was the first time. */
static char *
local_part_text(const char *start, const char *end)
{
	struct from_parser lexer = { .pos = start, .end = end };
	struct dkim_buf text = { 0 };

	for (next_token(&lexer); lexer.token.kind != TOKEN_END;
	     next_token(&lexer)) {
		const struct token *token = &lexer.token;

		if (token->kind == TOKEN_QUOTED)
			append_unquoted(&text, token->start + 1,
					token->start + token->len - 1);
		else
			dkim_buf_append(&text, token->start, token->len);
	}
	return dkim_buf_steal(&text);
}

enum dkim_author_status
dkim_author_address(const char *value, size_t len, char **local_part_r,
		    char **domain_r)
{
	struct from_parser parser;

	memset(&parser, 0, sizeof(parser));
	parser.pos = value;
	parser.end = value + len;
	enum dkim_author_status status = parse_value(&parser);
	if (local_part_r != NULL)
		*local_part_r = NULL;
	if (status != DKIM_AUTHOR_FOUND) {
		*domain_r = NULL;
		return status;
	}
	*domain_r = dkim_strndup(parser.domain, parser.domain_len);
	dkim_ascii_lowercase(*domain_r);
	if (local_part_r != NULL)
		*local_part_r = local_part_text(parser.local_start,
						parser.local_end);
	return DKIM_AUTHOR_FOUND;
}

enum dkim_author_status
dkim_author_domain(const char *value, size_t len, char **domain_r)
{
	return dkim_author_address(value, len, NULL, domain_r);
}

enum dkim_author_status
dkim_headers_author(struct dkim_headers *headers, char **domain_r)
{
	static const struct dkim_header_name from = { "From", 4 };
	size_t count = dkim_headers_count_name(headers, from.name, from.len);
	ssize_t index;

	*domain_r = NULL;
	if (count != 1)
		return count == 0 ? DKIM_AUTHOR_NO_FROM :
			DKIM_AUTHOR_MULTIPLE_FROM;
	dkim_headers_select(headers, &from, 1, &index);
	const struct dkim_header_field *field = &headers->fields[index];
	const char *text = dkim_headers_field(headers, (size_t)index);
	/* WSP may come between the name and the colon (obs-from). */
	const char *value = (const char *)memchr(text, ':', field->len) + 1;
	return dkim_author_domain(value, field->len - (size_t)(value - text),
				  domain_r);
}

const char *
dkim_author_status_text(enum dkim_author_status status)
{
	switch (status) {
	case DKIM_AUTHOR_FOUND:
		return "one author";
	case DKIM_AUTHOR_NO_FROM:
		return "no From field";
	case DKIM_AUTHOR_MULTIPLE_FROM:
		return "several From fields";
	case DKIM_AUTHOR_NO_MAILBOX:
		return "no mailbox in the From field";
	case DKIM_AUTHOR_SEVERAL_MAILBOXES:
		return "several mailboxes in the From field";
	case DKIM_AUTHOR_GROUP:
		return "a group in the From field";
	case DKIM_AUTHOR_SYNTAX:
		return "the From field is not valid address syntax";
	case DKIM_AUTHOR_NOT_A_DOMAIN:
		return "the From address has no valid domain name";
	case DKIM_AUTHOR_DISPUTED:
		return "the From field reads differently to mail clients";
	}
	return "unknown";
}

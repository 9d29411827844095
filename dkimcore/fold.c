/* Writing header fields folded at 78 characters per line (RFC 5322
 * §2.1.1), breaking only where the field's syntax allows whitespace: the
 * signature fields, whose tag lists allow FWS around each tag and inside
 * b=, and ARC-Authentication-Results between words. */
#include "dkim-private.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
dkim_fold_start(struct dkim_folder *folder, struct dkim_buf *buf,
		const char *name)
{
	folder->buf = buf;
	dkim_buf_append_str(buf, name);
	dkim_buf_append_c(buf, ':');
	folder->column = strlen(name) + 1;
}

void
dkim_fold_break(struct dkim_folder *folder)
{
	dkim_buf_append_str(folder->buf, "\r\n\t");
	folder->column = 1;
}

void
dkim_fold_append(struct dkim_folder *folder, const char *text, size_t len,
		 bool space_before)
{
	size_t needed = len + (space_before ? 1 : 0);

	if (folder->column + needed > DKIM_FOLD_WIDTH && folder->column > 1) {
		dkim_fold_break(folder);
	} else if (space_before) {
		dkim_buf_append_c(folder->buf, ' ');
		folder->column++;
	}
	dkim_buf_append(folder->buf, text, len);
	folder->column += len;
}

void
dkim_fold_tag(struct dkim_folder *folder, const char *text)
{
	dkim_fold_append(folder, text, strlen(text), folder->column > 1);
}

void
dkim_fold_tagf(struct dkim_folder *folder, const char *fmt, ...)
{
	char text[512];
	va_list args;

	va_start(args, fmt);
	vsnprintf(text, sizeof(text), fmt, args);
	va_end(args);
	dkim_fold_tag(folder, text);
}

/* h= may break after any colon (RFC 6376 §3.5 allows FWS there). */
void
dkim_fold_header_list(struct dkim_folder *folder,
		      const struct dkim_header_name *names, size_t count)
{
	struct dkim_buf piece = { 0 };

	for (size_t i = 0; i < count; i++) {
		dkim_buf_truncate(&piece, 0);
		if (i == 0)
			dkim_buf_append_str(&piece, "h=");
		dkim_buf_append(&piece, names[i].name, names[i].len);
		dkim_buf_append_c(&piece, i + 1 < count ? ':' : ';');
		dkim_fold_append(folder, piece.data, piece.len,
				 i == 0 && folder->column > 1);
	}
	dkim_buf_free(&piece);
}

void
dkim_fold_base64(struct dkim_folder *folder, const char *text, size_t len,
		 size_t width)
{
	while (len > 0) {
		if (folder->column >= width)
			dkim_fold_break(folder);
		size_t room = width - folder->column;
		size_t take = len < room ? len : room;
		dkim_buf_append(folder->buf, text, take);
		folder->column += take;
		text += take;
		len -= take;
	}
}

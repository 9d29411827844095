/* Growable, always NUL-terminated byte buffer. */
#include "dkim-util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
dkim_buf_reserve(struct dkim_buf *buf, size_t extra)
{
	size_t need = buf->len + extra + 1;

	if (need <= buf->cap)
		return;
	size_t cap = buf->cap < 64 ? 64 : buf->cap;
	while (cap < need)
		cap *= 2;
	buf->data = dkim_realloc(buf->data, cap);
	buf->cap = cap;
}

void
dkim_buf_append(struct dkim_buf *buf, const void *data, size_t len)
{
	dkim_buf_reserve(buf, len);
	if (len > 0)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

void
dkim_buf_append_str(struct dkim_buf *buf, const char *str)
{
	dkim_buf_append(buf, str, strlen(str));
}

void
dkim_buf_append_c(struct dkim_buf *buf, char c)
{
	dkim_buf_append(buf, &c, 1);
}

void
dkim_buf_printf(struct dkim_buf *buf, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	int len = vsnprintf(NULL, 0, fmt, args);
	va_end(args);
	if (len <= 0)
		return;

	dkim_buf_reserve(buf, (size_t)len);
	va_start(args, fmt);
	vsnprintf(buf->data + buf->len, (size_t)len + 1, fmt, args);
	va_end(args);
	buf->len += (size_t)len;
}

void
dkim_buf_set_length(struct dkim_buf *buf, size_t len)
{
	buf->len = len;
	buf->data[len] = '\0';
}

void
dkim_buf_truncate(struct dkim_buf *buf, size_t len)
{
	if (len < buf->len) {
		buf->len = len;
		buf->data[len] = '\0';
	}
}

char *
dkim_buf_steal(struct dkim_buf *buf)
{
	char *data = buf->data != NULL ? buf->data : dkim_strdup("");

	buf->data = NULL;
	buf->len = buf->cap = 0;
	return data;
}

void
dkim_buf_free(struct dkim_buf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}

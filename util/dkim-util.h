/*
 * General-purpose helpers below dkimcore and the libraries built beside it
 * (keytable/): allocation that aborts on exhaustion, a growable byte
 * buffer, ASCII text tests.  No DKIM here; plain C, no Dovecot.
 */
#ifndef DKIM_UTIL_H
#define DKIM_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#define DKIM_ATTR_FORMAT(fmt, args) __attribute__((format(printf, fmt, args)))
#define DKIM_ATTR_NORETURN __attribute__((noreturn))
#define DKIM_N_ELEMENTS(arr) (sizeof(arr) / sizeof((arr)[0]))

/* ---- memory (alloc.c) ----
 * Allocation failure aborts the process, as Dovecot itself does: every
 * buffer the library grows is bounded by a configured cap, so running out
 * of memory means the process is in trouble anyway. */
void *dkim_malloc(size_t size);
void *dkim_calloc(size_t count, size_t size);
void *dkim_realloc(void *ptr, size_t size);
char *dkim_strdup(const char *str);
char *dkim_strndup(const char *str, size_t len);
void *dkim_memdup(const void *data, size_t size);
char *dkim_strdup_printf(const char *fmt, ...) DKIM_ATTR_FORMAT(1, 2);

/* ---- growable byte buffer (buffer.c) ---- */
struct dkim_buf {
	char *data;	/* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
};

void dkim_buf_append(struct dkim_buf *buf, const void *data, size_t len);
void dkim_buf_append_str(struct dkim_buf *buf, const char *str);
void dkim_buf_append_c(struct dkim_buf *buf, char c);
void dkim_buf_printf(struct dkim_buf *buf, const char *fmt, ...)
	DKIM_ATTR_FORMAT(2, 3);
void dkim_buf_truncate(struct dkim_buf *buf, size_t len);
/* Makes room for `extra` more bytes; write them at data + len, then
 * dkim_buf_set_length(). */
void dkim_buf_reserve(struct dkim_buf *buf, size_t extra);
void dkim_buf_set_length(struct dkim_buf *buf, size_t len);
/* Returns the contents as a malloc()ed string and empties the buffer. */
char *dkim_buf_steal(struct dkim_buf *buf);
void dkim_buf_free(struct dkim_buf *buf);

/* ---- ASCII text (ascii.c) ---- */
static inline bool
dkim_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}
static inline char
dkim_ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}
/* Lowercases the ASCII letters of a NUL-terminated string in place. */
void dkim_ascii_lowercase(char *str);

#endif

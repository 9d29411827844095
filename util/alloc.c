/* Allocation wrappers that abort on exhaustion (see dkim-util.h). */
#include "dkim-util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void DKIM_ATTR_NORETURN
out_of_memory(size_t size)
{
	fprintf(stderr, "dovecot-dkim: out of memory allocating %zu bytes\n", size);
	abort();
}

void *
dkim_malloc(size_t size)
{
	void *ptr = malloc(size == 0 ? 1 : size);

	if (ptr == NULL)
		out_of_memory(size);
	return ptr;
}

void *
dkim_calloc(size_t count, size_t size)
{
	void *ptr = calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);

	if (ptr == NULL)
		out_of_memory(count * size);
	return ptr;
}

void *
dkim_realloc(void *ptr, size_t size)
{
	void *new_ptr = realloc(ptr, size == 0 ? 1 : size);

	if (new_ptr == NULL)
		out_of_memory(size);
	return new_ptr;
}

void *
dkim_memdup(const void *data, size_t size)
{
	void *copy = dkim_malloc(size);

	if (size > 0)
		memcpy(copy, data, size);
	return copy;
}

char *
dkim_strndup(const char *str, size_t len)
{
	char *copy = dkim_malloc(len + 1);

	if (len > 0)
		memcpy(copy, str, len);
	copy[len] = '\0';
	return copy;
}

char *
dkim_strdup(const char *str)
{
	return dkim_strndup(str, strlen(str));
}

char *
dkim_strdup_printf(const char *fmt, ...)
{
	char tmp[256];
	va_list args;

	va_start(args, fmt);
	int len = vsnprintf(tmp, sizeof(tmp), fmt, args);
	va_end(args);
	if (len < 0)
		return dkim_strdup("");
	if ((size_t)len < sizeof(tmp))
		return dkim_strndup(tmp, (size_t)len);

	char *str = dkim_malloc((size_t)len + 1);
	va_start(args, fmt);
	vsnprintf(str, (size_t)len + 1, fmt, args);
	va_end(args);
	return str;
}

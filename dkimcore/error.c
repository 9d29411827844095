/* Filling a struct dkim_error (see dkim.h). */
#include "dkim-private.h"

#include <stdarg.h>
#include <stdio.h>

void
dkim_error_set(struct dkim_error *error, const char *fmt, ...)
{
	va_list args;

	if (error == NULL)
		return;
	va_start(args, fmt);
	vsnprintf(error->text, sizeof(error->text), fmt, args);
	va_end(args);
}

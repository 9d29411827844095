/* Splitting a header block into fields as it streams by (see
 * dkim-private.h): the one reading of where fields and the header block
 * end, shared by the verifier's header store and the
 * Authentication-Results filter, so that what is verified and what is
 * removed are the same fields. */
#include "dkim-private.h"

#include <string.h>

void
dkim_field_splitter_init(struct dkim_field_splitter *splitter,
			 const struct dkim_field_splitter_vfuncs *v,
			 void *context)
{
	memset(splitter, 0, sizeof(*splitter));
	splitter->v = v;
	splitter->context = context;
	splitter->at_line_start = true;
}

static void
field_start(struct dkim_field_splitter *splitter)
{
	splitter->in_field = true;
	splitter->v->field_start(splitter->context);
}

static void
header_end(struct dkim_field_splitter *splitter, uint64_t header_size)
{
	splitter->ended = true;
	splitter->header_size = header_size;
	splitter->v->header_end(splitter->context);
}

size_t
dkim_field_splitter_feed(struct dkim_field_splitter *splitter,
			 const void *data, size_t size)
{
	const char *start = data, *p = start, *end = p + size;

	while (p < end && !splitter->ended) {
		if (splitter->at_line_start) {
			unsigned char c = (unsigned char)*p;
			uint64_t line_offset =
				splitter->offset + (uint64_t)(p - start);

			if (splitter->cr_at_line_start) {
				splitter->cr_at_line_start = false;
				if (c == '\n') {
					/* CRLF: the CR was consumed before */
					header_end(splitter, line_offset - 1);
					p++;
					break;
				}
				/* A line that begins with a bare CR: a
				 * malformed, nameless field of its own. */
				field_start(splitter);
				splitter->v->line(splitter->context, "\r", 1);
				splitter->at_line_start = false;
				continue;
			}
			if (c == '\n') {
				header_end(splitter, line_offset);
				p++;
				break;
			}
			if (c == '\r') {
				splitter->cr_at_line_start = true;
				p++;
				continue;
			}
			/* SP or HTAB continues the field above, if any */
			if (!dkim_is_wsp(c) || !splitter->in_field)
				field_start(splitter);
			splitter->at_line_start = false;
		}

		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = lf == NULL ? end : lf + 1;

		splitter->v->line(splitter->context, p,
				  (size_t)(line_end - p));
		splitter->at_line_start = lf != NULL;
		p = line_end;
	}
	splitter->offset += (uint64_t)(p - start);
	return (size_t)(p - start);
}

void
dkim_field_splitter_finish(struct dkim_field_splitter *splitter)
{
	if (splitter->ended)
		return;
	/* A CR alone on the last line, with no LF after it, ends the header
	 * block like an empty line: the message has no body. */
	header_end(splitter, splitter->offset -
		   (splitter->cr_at_line_start ? 1 : 0));
}

/* Removing the Authentication-Results fields of ours from a header block
 * as it streams by (dkim.h states the rule; authres.c decides on each
 * field).  Only the current field is kept in memory, up to
 * max_field_bytes: a longer one is decided on its beginning, and the rest
 * of it is passed on or skipped as it comes. */
#include "dkim-private.h"

#include <stdlib.h>
#include <string.h>

enum field_state {
	FIELD_NONE,	/* before the first field, and after the last */
	FIELD_OPEN,	/* being collected, undecided */
	FIELD_KEPT,	/* decided before its end: the rest is passed on */
	FIELD_REMOVED,	/* decided before its end: the rest is skipped */
};

struct dkim_authres_filter {
	char *authserv_id;
	size_t max_field_bytes;
	dkim_authres_output_func *output;
	void *context;

	struct dkim_field_splitter splitter;
	struct dkim_buf field;		/* the open field */
	enum field_state state;
	size_t fields;			/* fields ended so far */

	size_t removed;
	char *removed_top;
	size_t removed_top_len;
};

static void
emit(dkim_authres_filter *filter, const char *data, size_t size)
{
	if (filter->output != NULL && size > 0)
		filter->output(filter->context, data, size);
}

/* Decides on the open field: all of it (complete), or its beginning. */
static void
decide(dkim_authres_filter *filter, bool complete)
{
	struct dkim_buf *field = &filter->field;

	if (dkim_authres_field_is_ours(field->data, field->len, complete,
				       filter->authserv_id)) {
		filter->state = FIELD_REMOVED;
		filter->removed++;
		if (filter->fields == 0) {
			filter->removed_top = dkim_memdup(field->data,
							  field->len);
			filter->removed_top_len = field->len;
		}
	} else {
		filter->state = FIELD_KEPT;
		emit(filter, field->data, field->len);
	}
	dkim_buf_truncate(field, 0);
}

static void
field_end(dkim_authres_filter *filter)
{
	if (filter->state == FIELD_NONE)
		return;
	if (filter->state == FIELD_OPEN)
		decide(filter, true);
	filter->fields++;
	filter->state = FIELD_NONE;
}

static void
field_begin(dkim_authres_filter *filter)
{
	field_end(filter);
	filter->state = FIELD_OPEN;
}

static void
field_add(dkim_authres_filter *filter, const char *data, size_t size)
{
	if (filter->state == FIELD_OPEN) {
		size_t room = filter->max_field_bytes - filter->field.len;

		if (size <= room) {
			dkim_buf_append(&filter->field, data, size);
			return;
		}
		dkim_buf_append(&filter->field, data, room);
		decide(filter, false);
		data += room;
		size -= room;
	}
	if (filter->state == FIELD_KEPT)
		emit(filter, data, size);
}

/* ---- the splitter's events (field-split.c) ---- */

static void
splitter_field_start(void *context)
{
	field_begin(context);
}

static void
splitter_line(void *context, const char *data, size_t size)
{
	field_add(context, data, size);
}

static void
splitter_header_end(void *context)
{
	field_end(context);
}

static const struct dkim_field_splitter_vfuncs authres_filter_vfuncs = {
	.field_start = splitter_field_start,
	.line = splitter_line,
	.header_end = splitter_header_end,
};

dkim_authres_filter *
dkim_authres_filter_new(const char *authserv_id, size_t max_field_bytes,
			dkim_authres_output_func *output, void *context)
{
	dkim_authres_filter *filter = dkim_calloc(1, sizeof(*filter));

	filter->authserv_id = dkim_strdup(authserv_id);
	filter->max_field_bytes = max_field_bytes > 0 ? max_field_bytes : 1;
	filter->output = output;
	filter->context = context;
	dkim_field_splitter_init(&filter->splitter, &authres_filter_vfuncs,
				 filter);
	return filter;
}

size_t
dkim_authres_filter_feed(dkim_authres_filter *filter, const void *data,
			 size_t size)
{
	return dkim_field_splitter_feed(&filter->splitter, data, size);
}

uint64_t
dkim_authres_filter_finish(dkim_authres_filter *filter)
{
	dkim_field_splitter_finish(&filter->splitter);
	return filter->splitter.header_size;
}

size_t
dkim_authres_filter_removed(const dkim_authres_filter *filter)
{
	return filter->removed;
}

const char *
dkim_authres_filter_removed_top(const dkim_authres_filter *filter,
				size_t *len_r)
{
	*len_r = filter->removed_top_len;
	return filter->removed_top;
}

void
dkim_authres_filter_free(dkim_authres_filter **filter_p)
{
	dkim_authres_filter *filter = *filter_p;

	if (filter == NULL)
		return;
	*filter_p = NULL;
	dkim_buf_free(&filter->field);
	free(filter->removed_top);
	free(filter->authserv_id);
	free(filter);
}

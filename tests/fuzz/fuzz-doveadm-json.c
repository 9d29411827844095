/* The JSON that dkim-keys reads from "doveadm -f json dict iter"
 * (tools/doveadm-dict.c): doveadm's output is not ours, so whatever it
 * prints gives rows or a clear error, and rows written back as JSON (every
 * byte that needs it escaped) read back the same.
 *
 * Input: the text doveadm printed. */
#include "doveadm-dict.h"
#include "dkim-util.h"
#include "fuzz.h"

static void
append_json_string(struct dkim_buf *buf, const char *text)
{
	dkim_buf_append_c(buf, '"');
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0';
	     p++) {
		if (*p == '"' || *p == '\\')
			dkim_buf_printf(buf, "\\%c", *p);
		else if (*p < 0x20)
			dkim_buf_printf(buf, "\\u%04x", *p);
		else
			dkim_buf_append_c(buf, (char)*p);
	}
	dkim_buf_append_c(buf, '"');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct doveadm_dict_row *rows, *again;
	size_t count, again_count;
	struct dkim_error error;

	if (doveadm_dict_parse_json((const char *)data, size, &rows, &count,
				    &error) < 0) {
		FUZZ_ASSERT(strstr(error.text, "JSON") != NULL,
			    "an error that does not say what: %s", error.text);
		return 0;
	}
	struct dkim_buf json = { 0 };
	dkim_buf_append_c(&json, '[');
	for (size_t i = 0; i < count; i++) {
		FUZZ_ASSERT(rows[i].key != NULL && rows[i].value != NULL,
			    "row %zu without a key or value", i);
		dkim_buf_append_str(&json, i > 0 ? ",{\"key\":" : "{\"key\":");
		append_json_string(&json, rows[i].key);
		dkim_buf_append_str(&json, ",\"value\":");
		append_json_string(&json, rows[i].value);
		dkim_buf_append_c(&json, '}');
	}
	dkim_buf_append_c(&json, ']');
	FUZZ_ASSERT(doveadm_dict_parse_json(json.data, json.len, &again,
					    &again_count, &error) == 0,
		    "rows written back do not parse: %s", error.text);
	FUZZ_ASSERT(again_count == count, "%zu rows read back, %zu written",
		    again_count, count);
	for (size_t i = 0; i < count; i++) {
		FUZZ_ASSERT(strcmp(rows[i].key, again[i].key) == 0 &&
			    strcmp(rows[i].value, again[i].value) == 0,
			    "row %zu changed when written and read back", i);
	}
	doveadm_dict_rows_free(&again, again_count);
	doveadm_dict_rows_free(&rows, count);
	dkim_buf_free(&json);
	return 0;
}

/* Base64 (RFC 2045) as DKIM uses it: b=, bh= and p= may contain FWS. */
#include "dkim-private.h"

#include <stdlib.h>

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for alphabet characters, 64 for '=', 65 for FWS, 66 invalid. */
enum { B64_PAD = 64, B64_SKIP = 65, B64_BAD = 66 };

static unsigned char
base64_class(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return (unsigned char)(c - 'A');
	if (c >= 'a' && c <= 'z')
		return (unsigned char)(c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (unsigned char)(c - '0' + 52);
	switch (c) {
	case '+':
		return 62;
	case '/':
		return 63;
	case '=':
		return B64_PAD;
	case ' ':
	case '\t':
	case '\r':
	case '\n':
		return B64_SKIP;
	default:
		return B64_BAD;
	}
}

unsigned char *
dkim_base64_decode(const char *src, size_t len, size_t *size_r)
{
	unsigned char *dest = dkim_malloc(len / 4 * 3 + 3);
	size_t out = 0;
	unsigned group = 0, group_len = 0, padding = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char value = base64_class((unsigned char)src[i]);

		if (value == B64_SKIP)
			continue;
		if (value == B64_BAD)
			goto invalid;
		if (value == B64_PAD) {
			/* '=' only completes the last group of four. */
			if (group_len < 2 || ++padding > 2)
				goto invalid;
			group_len++;
			continue;
		}
		if (padding > 0)
			goto invalid;
		group = (group << 6) | value;
		group_len++;
		if (group_len == 4) {
			dest[out++] = (unsigned char)(group >> 16);
			dest[out++] = (unsigned char)(group >> 8);
			dest[out++] = (unsigned char)group;
			group = group_len = 0;
		}
	}
	if (padding > 0) {
		if (group_len != 4)
			goto invalid;
		/* group holds 4 - padding sextets */
		if (padding == 1) {
			dest[out++] = (unsigned char)(group >> 10);
			dest[out++] = (unsigned char)(group >> 2);
		} else {
			dest[out++] = (unsigned char)(group >> 4);
		}
	} else if (group_len != 0) {
		goto invalid;
	}
	*size_r = out;
	return dest;
invalid:
	free(dest);
	return NULL;
}

void
dkim_base64_encode(struct dkim_buf *dest, const void *data, size_t size)
{
	const unsigned char *in = data;
	char quad[4];

	for (size_t i = 0; i < size; i += 3) {
		unsigned group = (unsigned)in[i] << 16;
		size_t left = size - i;

		if (left > 1)
			group |= (unsigned)in[i + 1] << 8;
		if (left > 2)
			group |= in[i + 2];
		quad[0] = base64_alphabet[(group >> 18) & 63];
		quad[1] = base64_alphabet[(group >> 12) & 63];
		quad[2] = left > 1 ? base64_alphabet[(group >> 6) & 63] : '=';
		quad[3] = left > 2 ? base64_alphabet[group & 63] : '=';
		dkim_buf_append(dest, quad, sizeof(quad));
	}
}

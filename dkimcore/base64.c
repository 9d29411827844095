/* Base64 (RFC 2045) as DKIM uses it: b=, bh= and p= may contain FWS. */
#include "dkim-private.h"

#include <stdlib.h>

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for alphabet characters, B64_PAD for '=', B64_SKIP for FWS;
 * everything else is invalid.  Stored plus one, so that the zero of
 * unlisted entries means invalid. */
enum { B64_PAD = 64, B64_SKIP = 65, B64_BAD = 255 };

static const unsigned char base64_table[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
	['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
	['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
	['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
	['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
	['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
	['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
	['='] = B64_PAD + 1,
	[' '] = B64_SKIP + 1, ['\t'] = B64_SKIP + 1,
	['\r'] = B64_SKIP + 1, ['\n'] = B64_SKIP + 1,
};

static inline unsigned char
base64_class(unsigned char c)
{
	return (unsigned char)(base64_table[c] - 1);
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

/* Strict UTF-8 validation. The second byte's range depends on the first (Unicode 15, table
 * 3-7); that is what excludes overlongs (E0, F0), surrogates (ED) and values above U+10FFFF
 * (F4); C0, C1 and F5-FF never start a sequence. */
#include "base/utf8.h"

size_t qs_utf8_sequence(const unsigned char *u, size_t avail)
{
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF;
	if (u[0] >= 0xC2 && u[0] <= 0xDF) {
		n = 2;
	} else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
		n = 3;
		lo = u[0] == 0xE0 ? 0xA0 : 0x80;
		hi = u[0] == 0xED ? 0x9F : 0xBF;
	} else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
		n = 4;
		lo = u[0] == 0xF0 ? 0x90 : 0x80;
		hi = u[0] == 0xF4 ? 0x8F : 0xBF;
	} else {
		return 0;
	}
	if (avail < n || u[1] < lo || u[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if ((u[i] & 0xC0) != 0x80)
			return 0;
	}
	return n;
}

bool qs_utf8_valid_nonul(const void *s, size_t n)
{
	const unsigned char *u = s;
	size_t i = 0;
	while (i < n) {
		if (u[i] == 0)
			return false;
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		size_t len = qs_utf8_sequence(u + i, n - i);
		if (len == 0)
			return false;
		i += len;
	}
	return true;
}

/* Checked decimal parsing: the only way numbers enter from text. */
#include "base/num.h"

#include <string.h>

#include "base/err.h"

static int parse_digits(const char *s, size_t len, uint64_t *out)
{
	if (len == 0)
		return QS_EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return QS_EINVAL;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return QS_E2BIG;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int qs_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v;
	int rc = parse_digits(s, strlen(s), &v);
	if (rc != 0)
		return rc;
	if (v > max)
		return QS_E2BIG;
	*out = v;
	return 0;
}

int qs_parse_size(const char *s, uint64_t max, uint64_t *out)
{
	size_t len = strlen(s);
	unsigned shift = 0;
	if (len > 0) {
		switch (s[len - 1]) {
		case 'K': shift = 10; break;
		case 'M': shift = 20; break;
		case 'G': shift = 30; break;
		case 'T': shift = 40; break;
		default: break;
		}
	}
	if (shift != 0)
		len--;
	uint64_t v;
	int rc = parse_digits(s, len, &v);
	if (rc != 0)
		return rc;
	if (v > (UINT64_MAX >> shift))
		return QS_E2BIG;
	v <<= shift;
	if (v > max)
		return QS_E2BIG;
	*out = v;
	return 0;
}

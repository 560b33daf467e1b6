/* Allocation wrappers: one place to change allocators and to check size arithmetic. */
#include "base/alloc.h"

#include "base/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *qs_malloc(size_t size)
{
	return malloc(size ? size : 1);
}

void *qs_calloc(size_t n, size_t size)
{
	size_t total;
	if (!qs_size_mul(n, size, &total))
		return NULL;
	return calloc(total ? total : 1, 1);
}

void *qs_realloc(void *p, size_t size)
{
	return realloc(p, size ? size : 1);
}

void qs_free(void *p)
{
	free(p);
}

char *qs_strndup(const char *s, size_t n)
{
	if (n == SIZE_MAX)
		return NULL;
	char *d = qs_malloc(n + 1);
	if (d == NULL)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *qs_strdup(const char *s)
{
	return qs_strndup(s, strlen(s));
}

bool qs_size_add(size_t a, size_t b, size_t *out)
{
	size_t r;
	if (__builtin_add_overflow(a, b, &r))
		return false;
	*out = r;
	return true;
}

bool qs_size_mul(size_t a, size_t b, size_t *out)
{
	size_t r;
	if (__builtin_mul_overflow(a, b, &r))
		return false;
	*out = r;
	return true;
}

void qs_wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;
	while (n--)
		*v++ = 0;
}

int qs_array_reserve(void **v, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap < 16 ? 16 : *cap;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return QS_ENOMEM;
		ncap *= 2;
	}
	size_t bytes;
	if (!qs_size_mul(ncap, elem, &bytes))
		return QS_ENOMEM;
	void *nv = qs_realloc(*v, bytes);
	if (nv == NULL)
		return QS_ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}
